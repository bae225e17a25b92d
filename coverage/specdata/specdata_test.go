package specdata_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/gcov"
	"github.com/scxcheck/scxcheck/coverage/specdata"
)

// The fixture of package gcov: prog.c built with gcc 12 in
// /tmp/scxcheck-gcov-fixture; run1 is `prog 3` (square and the loop), run2
// `prog` (cube, no loop).
const fixtureDir = "/tmp/scxcheck-gcov-fixture"

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../gcov/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two specs' data, stored as the harness stores them, merge into one
// coverage keyed by spec text: a line only one spec ran names that spec
// alone, a line both ran names both, a line neither ran names none.
func TestWriteAndMerge(t *testing.T) {
	gcovPath, err := exec.LookPath("gcov-12")
	if err != nil {
		t.Skip("gcov-12 not installed (Debian package gcc-12)")
	}
	dir, notes := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(notes, "prog.gcno"), read(t, "prog.gcno"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := specdata.Write(dir, "square spec", map[string][]byte{"prog.gcda": read(t, "run1.gcda")}); err != nil {
		t.Fatal(err)
	}
	if err := specdata.Write(dir, "cube spec", map[string][]byte{"prog.gcda": read(t, "run2.gcda")}); err != nil {
		t.Fatal(err)
	}
	// Written twice: the second replaces the first.
	if err := specdata.Write(dir, "cube spec", map[string][]byte{"prog.gcda": read(t, "run2.gcda")}); err != nil {
		t.Fatal(err)
	}
	// An incomplete directory (no spec.json) is not read.
	os.MkdirAll(filepath.Join(dir, "partial"), 0o755)

	specs, err := specdata.List(dir)
	if err != nil || len(specs) != 2 || specs[0].Text != "cube spec" || specs[1].Text != "square spec" {
		t.Fatalf("List = %+v, %v; want the two specs by text", specs, err)
	}
	var calls int
	m, err := specdata.Merge(t.Context(), dir, notes, fixtureDir, gcov.Tool{Path: gcovPath}, func(done, total int) {
		calls++
		if total != 2 || done > total {
			t.Errorf("progress %d/%d", done, total)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || !slices.Equal(m.Runs(), []string{"cube spec", "square spec"}) {
		t.Errorf("%d progress calls, runs %q", calls, m.Runs())
	}
	for _, c := range []struct {
		line int
		want []string
	}{
		{9, []string{"square spec"}},               // return x * x
		{14, []string{"cube spec"}},                // return x * x * x
		{19, []string{"cube spec", "square spec"}}, // int n = ...
	} {
		if got := m.ExecutedBy("prog.c", c.line); !slices.Equal(got, c.want) {
			t.Errorf("prog.c:%d executed by %q, want %q", c.line, got, c.want)
		}
	}
	if got := m.ExecutedBy("util.h", 4); !slices.Equal(got, []string{"square spec"}) {
		t.Errorf("util.h:4 (clamp, in the loop) executed by %q, want the square spec alone", got)
	}
}

func TestWriteRefusesOtherFiles(t *testing.T) {
	for _, p := range []string{"../x.gcda", "/abs/x.gcda", "kernel/sched/build_policy.gcno"} {
		if err := specdata.Write(t.TempDir(), "s", map[string][]byte{p: nil}); err == nil {
			t.Errorf("%q stored", p)
		}
	}
}

func TestMergeNothing(t *testing.T) {
	m, err := specdata.Merge(t.Context(), filepath.Join(t.TempDir(), "none"), t.TempDir(), "/", gcov.Tool{}, nil)
	if err != nil || len(m.Runs()) != 0 {
		t.Errorf("Merge of no data = %v runs, %v", m.Runs(), err)
	}
}
