package coverage_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// run is coverage of one spec: counts by file and line.
func run(files map[string]map[int]uint64) *gcov.Coverage {
	c := gcov.New()
	for p, lines := range files {
		f := &gcov.File{Path: p, Lines: map[int]*gcov.Line{}, Functions: map[string]*gcov.Function{}}
		for n, count := range lines {
			f.Lines[n] = &gcov.Line{Count: count}
		}
		c.Files[p] = f
	}
	return c
}

// report measures the first patch of the series on the tree that has it:
// three() ran (in spec-a only), sum()'s new line ran in both specs, the
// new file never ran, and one hunk was not located.
func report(t *testing.T) *coverage.Report {
	t.Helper()
	tree := os.DirFS("testdata/applied")
	changes, err := coverage.Locate(tree, patches(t, "series.mbox")[0])
	if err != nil {
		t.Fatal(err)
	}
	changes.Hunks = append(changes.Hunks, &coverage.Hunk{
		Patch: "[PATCH 1/2] sched: add three()", Path: "kernel/sched/gone.c", Header: "@@ -1,2 +1,3 @@",
		Status: coverage.NotLocated, Added: []coverage.Added{{Text: "int y;", Match: coverage.Missing}},
		Note: "no line of the hunk is in the candidate files",
	})
	var m gcov.Merged
	m.Add("spec-a", run(map[string]map[int]uint64{
		"kernel/sched/ext.c": {3: 1, 5: 1, 8: 1, 10: 1, 11: 1, 13: 1, 15: 1, 18: 1, 20: 1, 21: 1},
		"kernel/sched/new.c": {1: 0, 3: 0, 4: 0},
	}))
	m.Add("spec-b", run(map[string]map[int]uint64{
		"kernel/sched/ext.c": {3: 1, 5: 1, 8: 0, 10: 0, 11: 0, 13: 1, 15: 1, 18: 1, 20: 1, 21: 1},
		"kernel/sched/new.c": {1: 0, 3: 0, 4: 0},
	}))
	r, err := coverage.NewReport(tree, changes, &m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReport(t *testing.T) {
	r := report(t)
	if r.Executable != 7 || r.Executed != 4 {
		t.Errorf("%d of %d executed, want 4 of 7", r.Executed, r.Executable)
	}
	if got, want := r.Summary(), "changed lines: 4 of 7 executable executed (57.1%); 10 of 11 added lines found in the tree, 1 of 4 hunks not located"; got != want {
		t.Errorf("summary\n got %q\nwant %q", got, want)
	}
	// new.c's lines 1, 3 and 4 did not run; line 2 ("{") is not
	// executable, so they are one range.
	if got, want := r.Missed(), []coverage.Range{{File: "kernel/sched/new.c", Start: 1, End: 4, Missed: 3}}; !reflect.DeepEqual(got, want) {
		t.Errorf("missed %+v, want %+v", got, want)
	}
	ext := r.Files[0]
	if ext.Path != "kernel/sched/ext.c" || ext.Executable != 4 || ext.Executed != 4 || !ext.Instrumented {
		t.Errorf("ext.c %+v", ext)
	}
	byLine := map[int]coverage.LineReport{}
	for _, l := range ext.Lines {
		byLine[l.Line] = l
	}
	if l := byLine[20]; !reflect.DeepEqual(l.Runs, []string{"spec-a", "spec-b"}) || l.Count != 2 || l.Text != "\treturn one() + two() + three();" {
		t.Errorf("line 20: %+v", l)
	}
	if l := byLine[10]; !reflect.DeepEqual(l.Runs, []string{"spec-a"}) {
		t.Errorf("line 10: %+v", l)
	}
	if l := byLine[9]; l.Executable || l.Runs != nil {
		t.Errorf("line 9 (a brace) %+v", l)
	}
}

func TestReportText(t *testing.T) {
	var buf bytes.Buffer
	if err := report(t).WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	want := `Changed-line coverage: 4 of 7 executable changed lines executed (57.1%).
Patch: 3 of 4 hunks located (0 fuzzy, 1 not located), 10 of 11 added lines found (0 changed since).
Runs: 2.

Files (executed/executable of the changed lines):
  kernel/sched/ext.c  4/4 (100.0%)
  kernel/sched/new.c  0/3 (0.0%)

Not executed (3 lines in 1 ranges):
  kernel/sched/new.c:1-4
    !      1 | int added(void)
           2 | {
    !      3 | 	return 0;
    !      4 | }

Executed, and by which runs:
  kernel/sched/ext.c:8-11 (3 lines): spec-a
  kernel/sched/ext.c:20 (1 lines): spec-a, spec-b

Hunks not located in the tree (their lines are not counted):
  kernel/sched/gone.c @@ -1,2 +1,3 @@ (1 added lines): no line of the hunk is in the candidate files
`
	if got := buf.String(); got != want {
		t.Errorf("summary.txt\n%s\nwant\n%s", got, want)
	}
}

func TestReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := report(t).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary struct {
			Executed, Executable int
			Ratio                float64
			Specs                []string
			HunksNotLocated      int `json:"hunks_not_located"`
		}
		Files []struct {
			Path  string
			Lines []struct {
				Line       int
				Executable bool
				Count      uint64
				Specs      []string
			}
		}
		Missed []struct {
			File       string
			Start, End int
		}
		Hunks []struct {
			Status string
			File   string
			Added  []struct {
				Line  int
				Match string
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Executed != 4 || doc.Summary.Executable != 7 || doc.Summary.HunksNotLocated != 1 || len(doc.Summary.Specs) != 2 {
		t.Errorf("summary %+v", doc.Summary)
	}
	if len(doc.Files) != 2 || len(doc.Files[0].Lines) != 6 || doc.Files[0].Lines[5].Line != 20 || len(doc.Files[0].Lines[5].Specs) != 2 {
		t.Errorf("files %+v", doc.Files)
	}
	if len(doc.Missed) != 1 || doc.Missed[0].Start != 1 || doc.Missed[0].End != 4 {
		t.Errorf("missed %+v", doc.Missed)
	}
	if len(doc.Hunks) != 4 || doc.Hunks[0].Status != "exact" || doc.Hunks[0].Added[0].Match != "same" || doc.Hunks[3].Status != "not located" {
		t.Errorf("hunks %+v", doc.Hunks)
	}
}

func TestReportAnnotated(t *testing.T) {
	r := report(t)
	var buf bytes.Buffer
	if err := r.WriteAnnotated(&buf, "kernel/sched/ext.c"); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		"<!DOCTYPE html>",
		"6 changed lines, 4 executable, 4 executed.",
		// Four lines of context before the first changed line.
		`<tr class=""><td class="n">4</td><td class="c"></td><td class="m"></td><td class="s">{</td>`,
		`<tr class="hit"><td class="n">20</td><td class="c">2</td><td class="m">&#43;</td><td class="s">	return one() &#43; two() &#43; three();</td><td class="r">spec-a, spec-b</td></tr>`,
		`<td class="n">21</td>`,
		`<tr class="changed"><td class="n">9</td><td class="c"></td><td class="m">~</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script") || strings.Contains(page, "http") {
		t.Error("page is not self-contained")
	}
	// The file ends at line 21: no line past its end.
	if strings.Contains(page, `<td class="n">22</td>`) || strings.Contains(page, `<td class="n">3</td>`) {
		t.Error("page shows lines outside the context")
	}
	buf.Reset()
	if err := r.WriteAnnotated(&buf, "kernel/sched/new.c"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `<tr class="miss"><td class="n">3</td><td class="c">0</td><td class="m">!</td>`) {
		t.Errorf("new.c page:\n%s", buf.String())
	}
	if err := r.WriteAnnotated(&buf, "kernel/sched/core.c"); err == nil {
		t.Error("a file that did not change: no error")
	}
}

func TestReportWriteDir(t *testing.T) {
	dir := t.TempDir()
	written, err := report(t).WriteDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"changed-lines.json", "files/kernel/sched/ext.c.html", "files/kernel/sched/new.c.html", "summary.txt"}
	if !reflect.DeepEqual(written, want) {
		t.Errorf("written %v, want %v", written, want)
	}
	for _, name := range want {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestReportNothingExecutable(t *testing.T) {
	// A patch to a BPF program: no line is instrumented.
	tree := os.DirFS("testdata/applied")
	changes, err := coverage.Locate(tree, patches(t, "series.mbox")[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := coverage.NewReport(tree, changes, &gcov.Merged{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ratio() != 0 || !strings.HasPrefix(r.Summary(), "changed lines: 0 of 0 executable executed;") {
		t.Errorf("summary %q", r.Summary())
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	if !strings.Contains(buf.String(), "kernel/sched/ext.c  6 changed lines, none instrumented") {
		t.Errorf("text:\n%s", buf.String())
	}
}

func TestReportFuzzy(t *testing.T) {
	// The mangled patch on the tree that moved and rewrote its code.
	tree := os.DirFS("testdata/moved")
	changes, err := coverage.Locate(tree, patches(t, "mangled.txt")...)
	if err != nil {
		t.Fatal(err)
	}
	var m gcov.Merged
	m.Add("spec-a", run(map[string]map[int]uint64{"kernel/sched/ext/ext.c": {9: 1, 11: 1, 13: 1, 14: 1, 26: 0, 28: 0, 29: 0}}))
	r, err := coverage.NewReport(tree, changes, &m)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Changed-line coverage: 3 of 4 executable changed lines executed (75.0%).",
		"  kernel/sched/ext/ext.c:28\n    !     28 | \treturn one() + two() + three();\n",
		"Hunks located with differences:\n  kernel/sched/ext.c @@ -5,6 +5,11 @@ static int one(void): 5 of 5 added lines found in kernel/sched/ext/ext.c (1 changed since), confidence 0.",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestSections(t *testing.T) {
	for _, c := range []struct {
		changed    []int
		n, context int
		want       [][]int
	}{
		{[]int{5}, 20, 2, [][]int{{3, 4, 5, 6, 7}}},
		// Near the start and the end of the file.
		{[]int{1, 20}, 20, 2, [][]int{{1, 2, 3}, {18, 19, 20}}},
		// Contexts that touch are one section.
		{[]int{3, 8}, 20, 2, [][]int{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}},
		{[]int{3, 9}, 20, 2, [][]int{{1, 2, 3, 4, 5}, {7, 8, 9, 10, 11}}},
		// No context; a line past the end of the file shows nothing.
		{[]int{2, 3, 30}, 20, 0, [][]int{{2, 3}}},
		{nil, 20, 2, nil},
	} {
		if got := coverage.Sections(c.changed, c.n, c.context); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Sections(%v, %d, %d) = %v, want %v", c.changed, c.n, c.context, got, c.want)
		}
	}
}
