package runner

import (
	"context"
	"encoding/xml"
	"fmt"
	"github.com/scxcheck/scxcheck/outcome"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// Failures of the kinds the suites record, by class (outcome.EntryName).
const (
	msgPanic  = "crash"
	msgExit   = "exit"
	msgVMGone = "crash"
	msgCount  = "assertion"
	msgInfra  = "infra"
)

// fakeRun builds a complete run from spec outcomes "text=state[:class]";
// a failed spec without a class is an assertion, a timed out one a timeout.
func fakeRun(i, code int, outcomes ...string) Run {
	r := Run{Index: i, ExitCode: code}
	for _, o := range outcomes {
		text, rest, _ := strings.Cut(o, "=")
		state, msg, _ := strings.Cut(rest, ":")
		s := SpecResult{Text: text, State: state}
		switch {
		case state == "passed" || state == "skipped":
		case msg != "":
			s.Class = outcome.Class(msg)
		case state == "timedout" || state == "interrupted":
			s.Class = outcome.Timeout
		default:
			s.Class = outcome.Assertion
		}
		if s.Class != outcome.None || state == "skipped" {
			s.Failure = msg
		}
		if s.Class != outcome.None {
			s.Location = "suites/x.go:1"
		}
		r.Specs = append(r.Specs, s)
	}
	return r
}

func TestVerdictRule(t *testing.T) {
	pass := func(i int) Run { return fakeRun(i, 0, "a=passed", "b=passed") }
	for _, c := range []struct {
		name  string
		runs  []Run
		want  Verdict
		code  int
		specB Verdict
	}{
		{"all pass", []Run{pass(1), pass(2), pass(3)}, Pass, 0, Pass},
		{"one run, any failure fails", []Run{fakeRun(1, 1, "a=passed", "b=failed:"+msgCount)}, Fail, 1, Fail},
		{"one crash in five fails", []Run{pass(1), pass(2), fakeRun(3, 1, "a=passed", "b=failed:"+msgPanic), pass(4), pass(5)}, Fail, 1, Fail},
		{"one exit-kind failure in five fails", []Run{pass(1), fakeRun(2, 1, "a=passed", "b=failed:"+msgExit), pass(3), pass(4), pass(5)}, Fail, 1, Fail},
		{"QEMU dying in a call is a crash", []Run{pass(1), fakeRun(2, 1, "a=passed", "b=failed:"+msgVMGone), pass(3)}, Fail, 1, Fail},
		{"assertion failing 2 of 5 is flaky, the gate passes", []Run{pass(1), fakeRun(2, 1, "a=passed", "b=failed:"+msgCount), pass(3), fakeRun(4, 1, "a=passed", "b=failed:"+msgCount), pass(5)}, Pass, 0, Flaky},
		{"assertion failing 3 of 5 fails", []Run{pass(1), fakeRun(2, 1, "a=passed", "b=failed:"+msgCount), fakeRun(3, 1, "a=passed", "b=failed:"+msgCount), fakeRun(4, 1, "a=passed", "b=failed:"+msgCount), pass(5)}, Fail, 1, Fail},
		{"assertion failing 1 of 2 is flaky", []Run{pass(1), fakeRun(2, 1, "a=passed", "b=failed:"+msgCount)}, Pass, 0, Flaky},
		{"skipped everywhere is a skip", []Run{fakeRun(1, 0, "a=passed", "b=skipped:kernel lacks x"), fakeRun(2, 0, "a=passed", "b=skipped:kernel lacks x")}, Pass, 0, Skip},
		{"infrastructure in every run", []Run{{Index: 1, ExitCode: 3}, {Index: 2, ExitCode: 3}}, Infra, 3, ""},
		{"bad input is not a test", []Run{{Index: 1, ExitCode: 2}}, Infra, 3, ""},
		{"killed run", []Run{pass(1), {Index: 2, ExitCode: -1, Err: "run 2: signal: killed"}}, Infra, 3, Pass},
		{"exit 1 without a report", []Run{pass(1), {Index: 2, ExitCode: 1, Err: "run 2 exited 1 without a readable report"}}, Infra, 3, Pass},
		{"a regression seen wins over an infrastructure run", []Run{fakeRun(1, 1, "a=passed", "b=failed:"+msgPanic), {Index: 2, ExitCode: 3}}, Fail, 1, Fail},
		{"an infrastructure run's failures do not count", []Run{pass(1), fakeRun(2, 3, "a=passed", "b=failed:"+msgInfra)}, Infra, 3, Pass},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := Aggregate(c.runs)
			if s.Verdict != c.want || s.ExitCode() != c.code {
				t.Errorf("verdict %s (exit %d), want %s (exit %d): %s\n%s", s.Verdict, s.ExitCode(), c.want, c.code, s.Reason, s.Table())
			}
			if c.specB == "" {
				return
			}
			for _, st := range s.Specs {
				if st.Text == "b" && st.Verdict != c.specB {
					t.Errorf("spec b: %s, want %s\n%s", st.Verdict, c.specB, s.Table())
				}
			}
		})
	}
}

func TestTableShowsPassRates(t *testing.T) {
	s := Aggregate([]Run{fakeRun(1, 0, "a=passed", "b=passed"), fakeRun(2, 1, "a=passed", "b=failed:"+msgCount), fakeRun(3, 0, "a=passed", "b=passed")})
	tab := s.Table()
	for _, want := range []string{"flaky 2/3 passed  b", "pass  3/3 passed  a", "run 2 (assertion) suites/x.go:1: assertion", "verdict: pass"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
	if strings.Index(tab, "flaky") > strings.Index(tab, "pass  3/3") {
		t.Errorf("flaky specs should come first:\n%s", tab)
	}
}

// writeFakeReport writes a Ginkgo JSON report as `scxcheck run
// --json-report` does, with Ginkgo's own reporter.
func writeFakeReport(t testing.TB, path string, specs ...types.SpecReport) {
	rep := types.Report{SuiteDescription: "scxcheck", SpecReports: specs}
	if err := reporters.GenerateJSONReport(rep, path); err != nil {
		t.Fatal(err)
	}
}

// fakeSpec is a spec report; a failed spec with a class other than
// assertion carries the class the suite recorded (outcome.EntryName).
func fakeSpec(container, text string, state types.SpecState, class string) types.SpecReport {
	r := types.SpecReport{
		ContainerHierarchyTexts: []string{container},
		LeafNodeType:            types.NodeTypeIt,
		LeafNodeText:            text,
		LeafNodeLabels:          []string{"dispatch"},
		State:                   state,
		Failure:                 types.Failure{Message: class, Location: types.CodeLocation{FileName: "suites/dispatch.go", LineNumber: 42}},
	}
	if state.Is(types.SpecStateFailureStates) && class != "" && class != string(outcome.Assertion) {
		r.ReportEntries = append(r.ReportEntries, types.ReportEntry{Name: outcome.EntryName,
			Value: types.WrapEntryValue(class)})
	}
	return r
}

func TestReadReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	writeFakeReport(t, path,
		fakeSpec("sub", "passes", types.SpecStatePassed, ""),
		fakeSpec("sub", "fails", types.SpecStateFailed, msgExit),
		fakeSpec("sub", "skips", types.SpecStateSkipped, "kernel lacks x"),
		fakeSpec("sub", "not selected", types.SpecStateSkipped, ""),
		types.SpecReport{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed},
	)
	got, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d specs, want 3 (selected Its only): %+v", len(got), got)
	}
	f := got[1]
	if f.Text != "sub fails" || f.Class != outcome.Exit || f.Location != "suites/dispatch.go:42" || f.Labels[0] != "dispatch" {
		t.Errorf("failed spec read as %+v", f)
	}
	if got[2].State != "skipped" || got[2].Failure != "kernel lacks x" || got[2].Failed() {
		t.Errorf("skipped spec read as %+v", got[2])
	}
	if _, err := ReadReport(filepath.Join(t.TempDir(), "none.json")); err == nil {
		t.Error("a missing report is an error")
	}
}

// The fake `scxcheck run` for TestRepeat: this test binary, re-executed.
// FAKE_RUN_OUTCOMES lists per run "exit:state" (e.g. "1:failed"); it
// writes the report and exits with the code.
func TestMain(m *testing.M) {
	if outcomes := os.Getenv("FAKE_RUN_OUTCOMES"); outcomes != "" {
		os.Exit(fakeScxcheckRun(outcomes))
	}
	os.Exit(m.Run())
}

func fakeScxcheckRun(outcomes string) int {
	var report string
	run := 0
	for _, a := range os.Args[1:] {
		if v, ok := strings.CutPrefix(a, "--json-report="); ok {
			report = v
		}
		if v, ok := strings.CutPrefix(a, "--run="); ok {
			run, _ = strconv.Atoi(v)
		}
	}
	list := strings.Split(outcomes, ",")
	code, state, _ := strings.Cut(list[run-1], ":")
	c, _ := strconv.Atoi(code)
	if state != "" {
		msg := ""
		if state == "failed" {
			msg = msgCount
		}
		st := types.SpecStatePassed
		if state == "failed" {
			st = types.SpecStateFailed
		}
		rep := types.Report{SpecReports: []types.SpecReport{fakeSpec("sub", "spec", st, msg)}}
		if err := reporters.GenerateJSONReport(rep, report); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 99
		}
	}
	fmt.Printf("fake run %d\n", run)
	return c
}

func TestRepeat(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_RUN_OUTCOMES", "0:passed,1:failed,3:,0:passed")
	var progress []int
	var out strings.Builder
	runs, err := Repeat(context.Background(), Config{
		Command:  []string{self, "run"},
		PerRun:   func(i int) []string { return []string{fmt.Sprintf("--run=%d", i)} },
		Runs:     4,
		Dir:      t.TempDir(),
		Stdout:   &out,
		Progress: func(r Run) { progress = append(progress, r.Index) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 || len(progress) != 4 {
		t.Fatalf("%d runs, %d progress calls; want 4", len(runs), len(progress))
	}
	if !strings.Contains(out.String(), "fake run 4") {
		t.Errorf("the runs' output was not passed on: %q", out.String())
	}
	if !runs[0].Complete() || runs[1].ExitCode != 1 || !runs[1].Complete() || runs[2].Complete() || len(runs[1].Specs) != 1 {
		t.Errorf("runs: %+v", runs)
	}
	s := Aggregate(runs)
	// One run was infrastructure and the spec failed 1 of 3: flaky, so the
	// incomplete run decides: exit 3.
	if s.Verdict != Infra || s.Specs[0].Verdict != Flaky {
		t.Errorf("verdict %s, spec %s; want infra, flaky\n%s", s.Verdict, s.Specs[0].Verdict, s.Table())
	}

	// Stop ends the runs early.
	runs, err = Repeat(context.Background(), Config{
		Command: []string{self, "run"},
		PerRun:  func(i int) []string { return []string{fmt.Sprintf("--run=%d", i)} },
		Runs:    4, Dir: t.TempDir(),
		Stop: func(r Run) bool { return r.ExitCode == 1 },
	})
	if err != nil || len(runs) != 2 {
		t.Errorf("Stop: %d runs (%v), want 2", len(runs), err)
	}
}

func TestWriteJUnit(t *testing.T) {
	s := Aggregate([]Run{
		fakeRun(1, 1, "a=passed", "b=failed:"+msgExit, "c=skipped:kernel lacks x", "d=passed"),
		fakeRun(2, 1, "a=passed", "b=passed", "c=skipped:kernel lacks x", "d=failed:"+msgCount),
		fakeRun(3, 0, "a=passed", "b=passed", "c=skipped:kernel lacks x", "d=passed"),
	})
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := s.WriteJUnit(path, "scxcheck"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var suites reporters.JUnitTestSuites
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if suites.Tests != 4 || suites.Failures != 1 {
		t.Errorf("tests %d failures %d, want 4 and 1:\n%s", suites.Tests, suites.Failures, b)
	}
	for _, want := range []string{"failed in 1 of 3 runs", "flaky: passed 2 of 3 runs", "kernel lacks x"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JUnit lacks %q:\n%s", want, b)
		}
	}
}
