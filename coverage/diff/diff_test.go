package diff_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/diff"
)

func read(t *testing.T, name string) []*diff.Patch {
	t.Helper()
	ps, err := diff.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// file returns the file of the patches with the path.
func file(t *testing.T, ps []*diff.Patch, path string) *diff.File {
	t.Helper()
	for _, p := range ps {
		for _, f := range p.Files {
			if f.Path() == path {
				return f
			}
		}
	}
	t.Fatalf("no file %s", path)
	return nil
}

func TestPlainDiff(t *testing.T) {
	ps := read(t, "plain.diff")
	if len(ps) != 1 || len(ps[0].Files) != 1 || ps[0].Name != "plain.diff" || ps[0].Subject != "" {
		t.Fatalf("patches %+v", ps)
	}
	f := ps[0].Files[0]
	// diff -u output: the a/ and b/ are stripped, the timestamps dropped.
	if f.OldPath != "f.txt" || f.NewPath != "f.txt" || f.IsNew() || f.IsDeleted() || f.IsRenamed() {
		t.Errorf("paths %q %q", f.OldPath, f.NewPath)
	}
	if got := f.Added(); !reflect.DeepEqual(got, []int{2, 11}) {
		t.Errorf("added %v, want [2 11]", got)
	}
	last := f.Hunks[1].Lines[len(f.Hunks[1].Lines)-1]
	if last.Text != "eleven" || !last.NoNewline || last.New != 11 {
		t.Errorf("last line %+v", last)
	}
	if h := f.Hunks[1]; h.Header() != "@@ -8,3 +8,4 @@" || h.Count(diff.Context) != 3 || h.Count(diff.Added) != 1 {
		t.Errorf("hunk %s: %d context, %d added", h.Header(), h.Count(diff.Context), h.Count(diff.Added))
	}
	if len(ps[0].Warnings) != 0 {
		t.Errorf("warnings %v", ps[0].Warnings)
	}
}

func TestGitDiff(t *testing.T) {
	ps := read(t, "git.diff")
	if len(ps) != 1 {
		t.Fatalf("%d patches", len(ps))
	}
	var paths []string
	for _, f := range ps[0].Files {
		paths = append(paths, f.OldPath+">"+f.NewPath)
	}
	want := []string{"blob.bin>blob.bin", "gone.txt>", "kernel/sched/ext.c>kernel/sched/ext/ext.c",
		"kernel/sched/new.c>kernel/sched/new.c", "nonl.txt>nonl.txt", "with space.c>with space.c"}
	if !reflect.DeepEqual(paths, want) {
		t.Fatalf("files\n got %q\nwant %q", paths, want)
	}
	if f := ps[0].Files[0]; !f.Binary || len(f.Hunks) != 0 {
		t.Errorf("binary file %+v", f)
	}
	gone := file(t, ps, "gone.txt")
	if !gone.IsDeleted() || len(gone.Added()) != 0 {
		t.Errorf("deleted file %+v", gone)
	}
	if _, ok := gone.MapLine(1); ok {
		t.Error("a line of a deleted file maps")
	}
	ext := file(t, ps, "kernel/sched/ext/ext.c")
	if !ext.IsRenamed() || !reflect.DeepEqual(ext.Added(), []int{10}) {
		t.Errorf("renamed file: renamed %v, added %v", ext.IsRenamed(), ext.Added())
	}
	nonl := file(t, ps, "nonl.txt")
	h := nonl.Hunks[0]
	if got := h.Lines[2]; got.Kind != diff.Removed || got.Text != "c" || !got.NoNewline {
		t.Errorf("line before the marker %+v", got)
	}
	if !reflect.DeepEqual(nonl.Added(), []int{2, 3}) {
		t.Errorf("nonl added %v", nonl.Added())
	}
	if got := file(t, ps, "with space.c").Added(); !reflect.DeepEqual(got, []int{2}) {
		t.Errorf("path with a space: added %v", got)
	}
}

func TestQuotedPaths(t *testing.T) {
	ps, err := diff.Parse("q", `diff --git "a/caf\303\251.c" "b/caf\303\251.c"
new file mode 100644
index 0000000..587be6b
--- /dev/null
+++ "b/caf\303\251.c"
@@ -0,0 +1 @@
+x
`)
	if err != nil {
		t.Fatal(err)
	}
	f := ps[0].Files[0]
	if f.NewPath != "café.c" || !f.IsNew() || !reflect.DeepEqual(f.Added(), []int{1}) {
		t.Errorf("file %+v, added %v", f, f.Added())
	}
}

func TestMailbox(t *testing.T) {
	ps := read(t, "series.mbox")
	if len(ps) != 2 {
		t.Fatalf("%d patches, want 2", len(ps))
	}
	if ps[0].Subject != "[PATCH 1/2] sched: add three()" || ps[0].Name != "series.mbox#1" || ps[1].Name != "series.mbox#2" {
		t.Errorf("patches %q (%s), %q (%s)", ps[0].Subject, ps[0].Name, ps[1].Subject, ps[1].Name)
	}
	if got := file(t, ps[:1], "kernel/sched/ext.c").Added(); !reflect.DeepEqual(got, []int{8, 9, 10, 11, 12, 20}) {
		t.Errorf("first patch adds %v", got)
	}
	nw := file(t, ps[:1], "kernel/sched/new.c")
	if !nw.IsNew() || !reflect.DeepEqual(nw.Added(), []int{1, 2, 3, 4}) {
		t.Errorf("new file %+v", nw)
	}
	// The second message has its own files: the rename is there, not in
	// the first.
	if len(ps[1].Files) != 6 || !ps[1].Files[2].IsRenamed() {
		t.Errorf("second patch files %d", len(ps[1].Files))
	}
	// The "-- " and version that end each message are no hunk lines.
	for _, p := range ps {
		if len(p.Warnings) != 0 {
			t.Errorf("%s: warnings %v", p.Name, p.Warnings)
		}
	}
}

func TestReadPaths(t *testing.T) {
	// The cover letter has no diff and is left out; the others are read
	// in name order.
	ps, err := diff.ReadPaths("testdata/series", "testdata/plain.diff")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.String())
	}
	want := []string{"[PATCH 1/2] sched: add three()", "[PATCH 2/2] sched: move ext.c into ext/", "plain.diff"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("patches %q, want %q", names, want)
	}
	if _, err := diff.ReadFile("testdata/series/0000-cover-letter.patch"); !errors.Is(err, diff.ErrNoDiff) {
		t.Errorf("cover letter alone: %v, want ErrNoDiff", err)
	}
	if _, err := diff.ReadPaths("testdata/nonexistent"); err == nil {
		t.Error("a missing path: no error")
	}
}

func TestMangled(t *testing.T) {
	ps := read(t, "mangled.txt")
	if len(ps) != 1 || ps[0].Subject != "[PATCH 1/2] sched: add three()" {
		t.Fatalf("patches %+v", ps)
	}
	f := ps[0].Files[0]
	// Context lines lost their leading space and blank context lines are
	// gone: the counts tell where each hunk ends, and no hunk swallows the
	// mail's trailer ("--", the version, the archive's links).
	h := f.Hunks[0]
	if h.Count(diff.Added) != 5 || h.Count(diff.Context) != 5 || h.Lines[0].Text != "return 1;" {
		t.Errorf("hunk 1: %d added, %d context, first %q", h.Count(diff.Added), h.Count(diff.Context), h.Lines[0].Text)
	}
	h = f.Hunks[1]
	if h.Count(diff.Removed) != 1 || h.Count(diff.Added) != 1 || h.Lines[len(h.Lines)-1].Text != "}" {
		t.Errorf("hunk 2: %+v", h.Lines)
	}
	if len(ps[0].Warnings) != 2 || !strings.Contains(ps[0].Warnings[0], "ends 1 old and 1 new lines early") {
		t.Errorf("warnings %q", ps[0].Warnings)
	}
}

func TestSeedPatch(t *testing.T) {
	// The posted seed patch, as a web archive shows it: whitespace
	// mangled, blank lines dropped, a thread overview after it.
	ps := read(t, "seed-mangled.txt")
	if len(ps) != 1 {
		t.Fatalf("%d patches", len(ps))
	}
	hunks, added := 0, 0
	for _, f := range ps[0].Files {
		hunks += len(f.Hunks)
		added += len(f.Added())
	}
	if len(ps[0].Files) != 4 || hunks != 15 || added != 145 {
		t.Errorf("%d files, %d hunks, %d added lines; want 4, 15, 145 (the diffstat's insertions)", len(ps[0].Files), hunks, added)
	}
}

func TestMapLine(t *testing.T) {
	ps := read(t, "series.mbox")
	f := file(t, ps[:1], "kernel/sched/ext.c")
	for old, want := range map[int]int{1: 1, 5: 5, 7: 7, 8: 13, 13: 18, 14: 19, 16: 21} {
		if got, ok := f.MapLine(old); !ok || got != want {
			t.Errorf("MapLine(%d) = %d, %v; want %d", old, got, ok, want)
		}
	}
	// Line 15 ("return one() + two();") is replaced: it maps nowhere.
	if n, ok := f.MapLine(15); ok {
		t.Errorf("MapLine(15) = %d, want none", n)
	}
	// A new file has no old lines.
	nw := file(t, ps[:1], "kernel/sched/new.c")
	if n, ok := nw.MapLine(1); ok {
		t.Errorf("new file: MapLine(1) = %d", n)
	}
}

func TestNotHunks(t *testing.T) {
	ps, err := diff.Parse("x", "@@ not a hunk header\n--- a\n+++ b\n@@ -1 +1 @@\n-a\n+b\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || len(ps[0].Files) != 1 || !reflect.DeepEqual(ps[0].Files[0].Added(), []int{1}) {
		t.Errorf("patches %+v", ps)
	}
	// Paths without a/ and b/ are kept as they are.
	if f := ps[0].Files[0]; f.OldPath != "a" || f.NewPath != "b" {
		t.Errorf("paths %q %q", f.OldPath, f.NewPath)
	}
}
