package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel/build"
)

func TestVerdictDiffs(t *testing.T) {
	plain := []runner.SpecResult{{Text: "a", State: "passed"}, {Text: "b", State: "failed"}, {Text: "c", State: "skipped"}, {Text: "d", State: "passed"}}
	cov := []runner.SpecResult{{Text: "a", State: "passed"}, {Text: "b", State: "passed"}, {Text: "c", State: "skipped"}, {Text: "e", State: "passed"}}
	got := verdictDiffs(plain, cov)
	want := []string{"b: plain failed, coverage passed", "d: plain passed, coverage not run", "e: plain not run, coverage passed"}
	if !slices.Equal(got, want) {
		t.Errorf("diffs\n got %q\nwant %q", got, want)
	}
	if d := verdictDiffs(plain, plain); len(d) != 0 {
		t.Errorf("a run against itself differs: %q", d)
	}
}

// TestBenchCoverageReport checks the table and the verdict on made-up
// results (no build, no VM).
func TestBenchCoverageReport(t *testing.T) {
	side := func(name string, buildTime, suite time.Duration, states ...string) *benchKernel {
		s := &benchKernel{name: name, built: &build.Result{Tree: &build.Tree{Version: "7.2.13", Dir: "/src"}, BuildTime: buildTime},
			suite: suite, wall: suite + 10*time.Second, loadavg: "1.00"}
		for i, st := range states {
			s.specs = append(s.specs, runner.SpecResult{Text: string(rune('a' + i)), State: st})
			switch st {
			case "passed":
				s.result.Passed++
			case "failed":
				s.result.Failed++
			default:
				s.result.Skipped++
			}
		}
		return s
	}
	for _, c := range []struct {
		name      string
		cov       *benchKernel
		wantLines []string
		wantErr   string
	}{
		{"within target", side("coverage", 6*time.Minute, 110*time.Second, "passed", "skipped"),
			[]string{"kernel build 5m0s 6m0s +20.0%", "passed/failed/skipped 1/0/1 1/0/1 same verdicts",
				"suite time (Ginkgo) 1m40s 1m50s +10.0% (target ≤ +30%: met)"}, ""},
		{"too slow", side("coverage", 6*time.Minute, 140*time.Second, "passed", "skipped"),
			[]string{"+40.0% (target ≤ +30%: MISSED)"}, "overhead misses its target"},
		{"another verdict", side("coverage", 6*time.Minute, 100*time.Second, "failed", "skipped"),
			[]string{"1 spec(s) differ", "differs: a: plain passed, coverage failed"}, "1 spec(s) had another outcome"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			err := benchCoverageReport(&b, build.Options{Jobs: 2}, 1, "", side("plain", 5*time.Minute, 100*time.Second, "passed", "skipped"), c.cov, "2.00")
			// Columns are padded: compare with runs of spaces as one.
			text := strings.Join(strings.Fields(b.String()), " ")
			for _, l := range c.wantLines {
				if !strings.Contains(text, l) {
					t.Errorf("output lacks %q:\n%s", l, b.String())
				}
			}
			var ee exitError
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case c.wantErr != "" && (!errors.As(err, &ee) || ee.code != exitFail || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("error %v, want exit 1 saying %q", err, c.wantErr)
			}
		})
	}
}
