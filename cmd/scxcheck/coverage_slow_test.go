package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSlowCoverage builds the coverage kernel of the default tree (Debian's
// linux-source, in the default cache: a second run is a cache hit), runs
// the distant specs on it with --coverage and, as the changed lines,
// testdata/distant-check.patch (scx_bpf_sub_dispatch's check that the
// target is a direct child, which the tree contains), and checks what a
// reviewer reads: every added line located, the distant-dispatch error
// line executed by exactly the three specs that dispatch a scheduler that
// is not a direct child (not by the spec that runs after them and
// dispatches its direct children only: the counters are reset per spec),
// the dispatch of a direct child executed by that spec, lcov.info,
// summary.txt, the annotated page and the JUnit property; genhtml renders
// lcov.info when lcov is installed. Tens of minutes on two cores the first
// time: only with SCXCHECK_SLOW=1 (make test-slow).
func TestSlowCoverage(t *testing.T) {
	if os.Getenv("SCXCHECK_SLOW") != "1" {
		t.Skip("set SCXCHECK_SLOW=1 (make test-slow): builds Debian's kernel source with gcov and boots it")
	}
	out, _, code := runSelf(t, "kernel", "build", "--coverage")
	if code != 0 {
		t.Fatalf("kernel build --coverage: exit %d", code)
	}
	img := strings.TrimSpace(out)
	patch, err := filepath.Abs("testdata/distant-check.patch")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	art, junitPath := filepath.Join(dir, "artifacts"), filepath.Join(dir, "junit.xml")
	out, _, code = runSelf(t, "run", "--kernel", img, "--coverage", "--label-filter", "distant",
		"--changed-lines", patch, "--artifacts", art, "--junit", junitPath)
	if code != 0 {
		t.Fatalf("run --coverage --label-filter distant: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "coverage: changed lines: ") || !strings.Contains(out, "24 of 24 added lines found in the tree") {
		t.Errorf("no coverage line saying every added line was found:\n%s", out)
	}
	cov := filepath.Join(art, "coverage")
	for _, f := range []string{"summary.txt", "lcov.info", "changed-lines.json", "files/kernel/sched/ext/ext.c.html"} {
		if fi, err := os.Stat(filepath.Join(cov, f)); err != nil || fi.Size() == 0 {
			t.Errorf("coverage/%s: %v", f, err)
		}
	}

	var doc struct {
		Files []struct {
			Path  string `json:"path"`
			Lines []struct {
				Line       int      `json:"line"`
				Text       string   `json:"text"`
				Executable bool     `json:"executable"`
				Count      uint64   `json:"count"`
				Specs      []string `json:"specs"`
			} `json:"lines"`
		} `json:"files"`
	}
	b, err := os.ReadFile(filepath.Join(cov, "changed-lines.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("changed-lines.json: %v", err)
	}
	if len(doc.Files) != 1 || doc.Files[0].Path != "kernel/sched/ext/ext.c" {
		t.Fatalf("changed files %+v, want kernel/sched/ext/ext.c", doc.Files)
	}
	// specsOn returns the specs on the changed line whose text has s, with
	// the part of each spec's text that tells it apart.
	specsOn := func(s string) []string {
		for _, l := range doc.Files[0].Lines {
			if !strings.Contains(l.Text, s) {
				continue
			}
			if !l.Executable {
				t.Errorf("line %d %q is not executable", l.Line, l.Text)
			}
			var out []string
			for _, spec := range l.Specs {
				for _, key := range []string{"grandchild", "sibling", "own cgroup", "only its direct children"} {
					if strings.Contains(spec, key) {
						spec = key
					}
				}
				out = append(out, spec)
			}
			slices.Sort(out)
			return out
		}
		t.Errorf("no changed line has %q", s)
		return nil
	}
	if got, want := specsOn(`scx_error(parent, "trying to dispatch a distant sub-sched`), []string{"grandchild", "own cgroup", "sibling"}; !slices.Equal(got, want) {
		t.Errorf("the distant-dispatch error line was executed by %q, want %q", got, want)
	}
	if got := specsOn("return scx_dispatch_sched(child, rq"); !slices.Contains(got, "only its direct children") {
		t.Errorf("the dispatch of a direct child was executed by %q, not by the spec that dispatches its direct children", got)
	}

	summary, _ := os.ReadFile(filepath.Join(cov, "summary.txt"))
	if !strings.Contains(string(summary), "Changed-line coverage: ") || !strings.Contains(string(summary), "Executed, and by which runs:") {
		t.Errorf("summary.txt:\n%s", summary)
	}
	lcov, _ := os.ReadFile(filepath.Join(cov, "lcov.info"))
	if !strings.Contains(string(lcov), "/kernel/sched/ext/ext.c\n") || !strings.Contains(string(lcov), "end_of_record") {
		t.Errorf("lcov.info has no record of kernel/sched/ext/ext.c")
	}
	junit, _ := os.ReadFile(junitPath)
	if !strings.Contains(string(junit), "scxcheck.coverage.changed_ratio") {
		t.Errorf("the JUnit report lacks scxcheck.coverage.changed_ratio")
	}
	if _, err := exec.LookPath("genhtml"); err == nil {
		html := filepath.Join(dir, "html")
		if out, err := exec.CommandContext(t.Context(), "genhtml", "--quiet", "-o", html, filepath.Join(cov, "lcov.info")).CombinedOutput(); err != nil {
			t.Errorf("genhtml: %v\n%s", err, out)
		} else if _, err := os.Stat(filepath.Join(html, "index.html")); err != nil {
			t.Errorf("genhtml wrote no index.html: %v", err)
		}
	}
}
