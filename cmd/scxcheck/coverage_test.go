package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/specdata"
	"github.com/scxcheck/scxcheck/kernel/build"
)

// cubePatch adds cube() to coverage/gcov/testdata/prog.c: what the fixture
// program's "kernel" is measured against.
const cubePatch = `--- a/prog.c
+++ b/prog.c
@@ -7,6 +7,11 @@
 static int square(int x)
 {
 	return x * x;
 }
+
+static int cube(int x)
+{
+	return x * x * x;
+}
 
 int main(int argc, char **argv)
`

// fixtureCoverage stands in for a coverage kernel's cache entry (no kernel
// build, no VM): the gcov fixture of package coverage/gcov (prog.c built
// with gcc 12 in /tmp/scxcheck-gcov-fixture) as its notes and sources, and
// the specs' data as the harness stores it, one spec per named run
// (run1: `prog 3`, square; run2: `prog`, cube).
func fixtureCoverage(t *testing.T, runs map[string]string) (*coverageRun, *coverageFlags) {
	t.Helper()
	gcovPath, err := exec.LookPath("gcov-12")
	if err != nil {
		t.Skip("gcov-12 not installed (Debian package gcc-12)")
	}
	dir := t.TempDir()
	kc := &build.Coverage{ObjDir: "/fixture/obj", SrcDir: "/tmp/scxcheck-gcov-fixture", Objects: []string{"prog.o"},
		GCOV: gcovPath, Notes: filepath.Join(dir, "notes"), Sources: filepath.Join(dir, "src"), Tree: filepath.Join(dir, "tree")}
	copyTo := func(name, to string) {
		b, err := os.ReadFile(filepath.Join("../../coverage/gcov/testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(to, 0o755)
		if err := os.WriteFile(filepath.Join(to, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyTo("prog.gcno", kc.Notes)
	copyTo("prog.c", kc.Sources)
	copyTo("util.h", kc.Sources)
	os.MkdirAll(kc.Tree, 0o755)
	patch := filepath.Join(dir, "cube.patch")
	os.WriteFile(patch, []byte(cubePatch), 0o644)

	r := &coverageRun{kernel: kc, out: filepath.Join(dir, "out"), min: -1}
	r.sources = os.DirFS(kc.Sources)
	h := r.harnessOptions()
	if h.BuildDir != kc.ObjDir || !slices.Equal(h.Dirs, []string{"."}) || h.Out != r.gcdaDir() {
		t.Fatalf("harness options %+v", h)
	}
	for spec, run := range runs {
		b, err := os.ReadFile(filepath.Join("../../coverage/gcov/testdata", run+".gcda"))
		if err != nil {
			t.Fatal(err)
		}
		if err := specdata.Write(h.Out, spec, map[string][]byte{"prog.gcda": b}); err != nil {
			t.Fatal(err)
		}
	}
	return r, &coverageFlags{on: true, changed: listFlag{patch}}
}

// The whole host side of a coverage run without a VM: the changed lines
// located in the kernel's sources, gcov on each spec's data, the report
// with the spec that ran each line, lcov.info that genhtml renders, the
// JUnit properties, and the threshold.
func TestCoverageReport(t *testing.T) {
	r, flags := fixtureCoverage(t, map[string]string{"squares": "run1", "cubes": "run2"})
	var err error
	if r.changes, r.from, err = flags.changes(t.Context(), r.kernel, r.sources); err != nil {
		t.Fatal(err)
	}
	if st := r.changes.Stats(); st.Located != 1 || st.Found != 5 {
		t.Fatalf("changes: %s", st)
	}
	var log strings.Builder
	res, err := r.finish(t.Context(), &log)
	if err != nil {
		t.Fatalf("finish: %v\n%s", err, log.String())
	}
	for _, f := range []string{"summary.txt", "changed-lines.json", "lcov.info", "files/prog.c.html"} {
		if _, err := os.Stat(filepath.Join(r.out, f)); err != nil {
			t.Errorf("no %s in the report", f)
		}
	}
	if !strings.Contains(log.String(), "gcov on 2 of 2 specs' data") {
		t.Errorf("no progress: %q", log.String())
	}
	rep := res.report
	if rep.Executable == 0 || rep.Executed != rep.Executable {
		t.Errorf("%d of %d changed lines executed, want all", rep.Executed, rep.Executable)
	}
	// return x * x * x: the cube spec alone.
	var doc struct {
		Files []struct {
			Lines []struct {
				Line  int      `json:"line"`
				Specs []string `json:"specs"`
			} `json:"lines"`
		} `json:"files"`
	}
	b, _ := os.ReadFile(filepath.Join(r.out, "changed-lines.json"))
	if err := json.Unmarshal(b, &doc); err != nil || len(doc.Files) != 1 {
		t.Fatalf("changed-lines.json: %v\n%s", err, b)
	}
	for _, l := range doc.Files[0].Lines {
		if l.Line == 14 && !slices.Equal(l.Specs, []string{"cubes"}) {
			t.Errorf("prog.c:14 executed by %q, want the cube spec alone", l.Specs)
		}
	}
	if got := res.summary(r.out); !strings.Contains(got, "changed lines: 2 of 2 executable executed (100.0%)") || !strings.Contains(got, "by 2 specs") {
		t.Errorf("summary %q", got)
	}
	props := res.properties()
	if len(props) != 2 || props[0].Value != "1.0000" || props[1].Value != "2/2" {
		t.Errorf("properties %+v", props)
	}
	if err := res.belowMin(1); err != nil {
		t.Errorf("100%% is below 100%%: %v", err)
	}
	lcov, _ := os.ReadFile(filepath.Join(r.out, "lcov.info"))
	if !strings.Contains(string(lcov), "SF:"+filepath.Join(r.kernel.Sources, "prog.c")) {
		t.Errorf("lcov.info does not point into the kept sources:\n%.300s", lcov)
	}
	if genhtml, err := exec.LookPath("genhtml"); err == nil {
		out, err := exec.Command(genhtml, "--quiet", "--output-directory", t.TempDir(), filepath.Join(r.out, "lcov.info")).CombinedOutput()
		if err != nil {
			t.Errorf("genhtml: %v\n%s", err, out)
		}
	}
}

// Below --min-changed-coverage the run fails listing the lines no spec ran.
func TestCoverageBelowMin(t *testing.T) {
	r, flags := fixtureCoverage(t, map[string]string{"squares": "run1"})
	var err error
	if r.changes, _, err = flags.changes(t.Context(), r.kernel, r.sources); err != nil {
		t.Fatal(err)
	}
	res, err := r.finish(t.Context(), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	err = res.belowMin(0.5)
	if err == nil {
		t.Fatalf("%d of %d executed passes 50%%", res.report.Executed, res.report.Executable)
	}
	for _, want := range []string{"below --min-changed-coverage 50%", "prog.c:12-14", "return x * x * x;"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("failure does not say %q:\n%v", want, err)
		}
	}
	if res.belowMin(-1) != nil || res.belowMin(0) != nil {
		t.Error("no threshold, or 0%, failed")
	}
}

// Without changed lines the report covers what ran, and says so.
func TestCoverageWithoutChanges(t *testing.T) {
	r, _ := fixtureCoverage(t, map[string]string{"squares": "run1"})
	res, err := r.finish(t.Context(), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if res.report != nil || res.properties() != nil || res.belowMin(0.9) != nil {
		t.Error("a report of changed lines without changes")
	}
	if s := res.summary(r.out); !strings.Contains(s, "instrumented lines executed by 1 specs (no changed lines given)") {
		t.Errorf("summary %q", s)
	}
}

// With no spec's data there is no report, and the error says so.
func TestCoverageNoData(t *testing.T) {
	r, _ := fixtureCoverage(t, nil)
	if _, err := r.finish(t.Context(), &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "no spec's gcov data") {
		t.Errorf("finish = %v", err)
	}
}

// testOnlyPatch stands in for scxcheck's test-only patch: applied after the
// user's, it moves their lines down by one.
const testOnlyPatch = `--- a/prog.c
+++ b/prog.c
@@ -1,3 +1,4 @@
+/* test only */
 /* A tiny program for the gcov package's tests: see gen.sh. */
 #include <stdio.h>
 #include <stdlib.h>
`

// The changed lines of the patches the kernel was built with, and of a git
// range of its tree, are where they are in the compiled sources: moved
// through scxcheck's test-only patch, whose own lines are not the change.
func TestCoverageChangesThroughTheTestPatch(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	r, _ := fixtureCoverage(t, nil)
	kc := r.kernel
	dir := t.TempDir()
	user, test := filepath.Join(dir, "cube.patch"), filepath.Join(dir, "test.patch")
	os.WriteFile(user, []byte(cubePatch), 0o644)
	os.WriteFile(test, []byte(testOnlyPatch), 0o644)
	kc.Patches = []build.CoveragePatch{{Name: "cube.patch", File: user}, {Name: "test-only", File: test, Test: true}}
	want := []int{13, 14, 15, 16} // cube's lines 12-15 (and the blank 11) after the test patch's line

	ch, from, err := (&coverageFlags{on: true}).changes(t.Context(), kc, r.sources)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.Lines()["prog.c"]; !slices.Equal(got[1:], want) || len(ch.Hunks) != 1 || !strings.Contains(from, "cube.patch") {
		t.Errorf("from the build's patches (%s): lines %v, %d hunks; want ...%v, the user's hunk alone", from, got, len(ch.Hunks), want)
	}

	// The tree is a git checkout whose last commit adds cube(); the build
	// applied only the test-only patch.
	kc.Patches = kc.Patches[1:]
	src, _ := os.ReadFile(filepath.Join("../../coverage/gcov/testdata", "prog.c"))
	without := strings.Replace(string(src), "\nstatic int cube(int x)\n{\n\treturn x * x * x;\n}\n", "", 1)
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", kc.Tree, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(kc.Tree, "prog.c"), []byte(without), 0o644)
	git("add", "prog.c")
	git("commit", "-q", "-m", "base")
	os.WriteFile(filepath.Join(kc.Tree, "prog.c"), src, 0o644)
	git("commit", "-q", "-a", "-m", "cube")
	ch, _, err = (&coverageFlags{on: true, base: "HEAD~1"}).changes(t.Context(), kc, r.sources)
	if err != nil {
		t.Fatal(err)
	}
	// git puts the blank line after cube() into the change, not the one before.
	if got := ch.Lines()["prog.c"]; !slices.Equal(got, append(want, 17)) {
		t.Errorf("from git: lines %v, want %v", got, append(want, 17))
	}
	if _, _, err := (&coverageFlags{on: true, base: "nosuchrev"}).changes(t.Context(), kc, r.sources); err == nil {
		t.Error("a revision the tree lacks was taken")
	}
}
