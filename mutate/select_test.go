package mutate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// TestChangedLinesRoundTrip reads the changed lines back from the
// changed-lines.json a coverage report writes: the same lines, with the
// specs that executed each, as LinesOf gives from the report itself.
func TestChangedLinesRoundTrip(t *testing.T) {
	const file = "kernel/sched/ext/distant.c"
	changes := &coverage.Changes{Hunks: []*coverage.Hunk{{
		Patch: "sched_ext: sub-dispatch", Path: file, Header: "@@ -25,0 +28,8 @@", File: file,
		Status: coverage.Exact, Confidence: 1,
		Added: []coverage.Added{{Line: 28, Match: coverage.Same}, {Line: 29, Match: coverage.Same},
			{Line: 30, Match: coverage.Same}, {Line: 31, Match: coverage.Same}, {Line: 34, Match: coverage.Same}},
	}}}
	spec := func(lines map[int]uint64) *gcov.Coverage {
		c := gcov.New()
		f := &gcov.File{Path: file, Lines: map[int]*gcov.Line{}, Functions: map[string]*gcov.Function{}}
		for n, count := range lines {
			f.Lines[n] = &gcov.Line{Count: count}
		}
		c.Files[file] = f
		return c
	}
	var m gcov.Merged
	m.Add("distant: a", spec(map[int]uint64{28: 1, 29: 0, 31: 2, 34: 0}))
	m.Add("dispatch: b", spec(map[int]uint64{28: 3, 29: 1, 31: 0, 34: 0}))
	rep, err := coverage.NewReport(distantFS(t), changes, &m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := rep.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadChangedLines(filepath.Join(dir, "changed-lines.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := LinesOf(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
	byLine := map[int]Line{}
	for _, l := range got {
		byLine[l.Line] = l
	}
	if l := byLine[28]; !reflect.DeepEqual(l.Specs, []string{"distant: a", "dispatch: b"}) || !l.Executable {
		t.Errorf("line 28: %+v", l)
	}
	if l := byLine[31]; !reflect.DeepEqual(l.Specs, []string{"distant: a"}) || l.Text != "\tif (unlikely(scx_parent(child) != parent)) {" {
		t.Errorf("line 31: %+v", l)
	}
	if l := byLine[34]; !l.Executable || l.Specs != nil {
		t.Errorf("line 34 (executable, never run): %+v", l)
	}
	if l := byLine[30]; l.Executable {
		t.Errorf("line 30 (blank, not instrumented): %+v", l)
	}
	sel, err := Select(distantFS(t), got, SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.NotExecuted) != 1 || sel.NotExecuted[0].Line != 34 || len(sel.Mutants) != 3 {
		t.Errorf("selection: %d mutants %v, not executed %v", len(sel.Mutants), ids(sel.Mutants), sel.NotExecuted)
	}

	if _, err := ReadChangedLines(filepath.Join(dir, "nothing.json")); err == nil {
		t.Error("a missing file read without error")
	}
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o644)
	if _, err := ReadChangedLines(filepath.Join(dir, "bad.json")); err == nil {
		t.Error("bad JSON read without error")
	}
}
