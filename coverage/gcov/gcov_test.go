package gcov_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// fixtureDir is where testdata/gen.sh compiled the fixtures: the .gcno
// records it as the compile directory.
const fixtureDir = "/tmp/scxcheck-gcov-fixture"

func parseFile(t *testing.T, name string) *gcov.Coverage {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := gcov.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	c.Relative(fixtureDir)
	return c
}

// counts returns a file's line counts.
func counts(c *gcov.Coverage, file string) map[int]uint64 {
	out := map[int]uint64{}
	if f := c.Files[file]; f != nil {
		for n, l := range f.Lines {
			out[n] = l.Count
		}
	}
	return out
}

func TestParse(t *testing.T) {
	c := parseFile(t, "run1.json")
	if got, want := c.Paths(), []string{"prog.c", "util.h"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	want := map[int]uint64{7: 1, 9: 1, 12: 0, 14: 0, 17: 1, 19: 1, 20: 1, 22: 1, 23: 1, 25: 0, 26: 4, 27: 3, 28: 1, 29: 1}
	if got := counts(c, "prog.c"); !reflect.DeepEqual(got, want) {
		t.Errorf("prog.c counts\n got %v\nwant %v", got, want)
	}
	if got := counts(c, "util.h"); !reflect.DeepEqual(got, map[int]uint64{2: 3, 4: 3, 5: 1, 6: 2, 7: 0, 8: 2}) {
		t.Errorf("util.h counts %v", got)
	}
	// Comments, blank lines and declarations are not instrumented.
	for _, n := range []int{1, 5, 8, 10, 21} {
		if c.Instrumented("prog.c", n) {
			t.Errorf("prog.c:%d instrumented", n)
		}
	}
	if l, _ := c.Line("prog.c", 26); !reflect.DeepEqual(l.Branches, []uint64{3, 1}) {
		t.Errorf("prog.c:26 branches %v, want [3 1]", l.Branches)
	}
	fn := c.Files["prog.c"].Functions["square"]
	if fn == nil || fn.StartLine != 7 || fn.Count != 1 {
		t.Errorf("square: %+v", fn)
	}
	lines, hit, fns, fnHit := c.Files["prog.c"].Summary()
	if lines != 14 || hit != 11 || fns != 3 || fnHit != 2 {
		t.Errorf("summary %d/%d lines, %d/%d functions", hit, lines, fnHit, fns)
	}
}

func TestParseStreamAndGzip(t *testing.T) {
	one, _ := os.ReadFile("testdata/run1.json")
	two, _ := os.ReadFile("testdata/run2.json")
	// Two documents in one stream, as gcov prints for two data files, and
	// the same gzipped, as in a .gcov.json.gz file.
	stream := append(append(one, '\n'), two...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(stream)
	zw.Close()
	for name, data := range map[string][]byte{"stream": stream, "gzip": gz.Bytes()} {
		c, err := gcov.Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.Relative(fixtureDir)
		if got := counts(c, "prog.c")[26]; got != 5 {
			t.Errorf("%s: prog.c:26 = %d, want 4+1", name, got)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", `{"files": []}`, `{"format_version": "1", "gcc_version": "12"`, "not json"} {
		if _, err := gcov.Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
	if _, err := gcov.Parse(strings.NewReader(`{}`)); !errors.Is(err, gcov.ErrFormat) {
		t.Errorf("Parse({}) = %v, want ErrFormat", err)
	}
}

func TestMerged(t *testing.T) {
	var m gcov.Merged
	if err := m.Add("spec-square", parseFile(t, "run1.json")); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("spec-cube", parseFile(t, "run2.json")); err != nil {
		t.Fatal(err)
	}
	if err := m.Add("spec-cube", gcov.New()); err == nil {
		t.Error("a run added twice")
	}
	total := m.Total()
	if got := counts(total, "prog.c"); got[9] != 1 || got[14] != 1 || got[17] != 2 || got[26] != 5 || got[27] != 3 {
		t.Errorf("summed counts %v", got)
	}
	if l, _ := total.Line("prog.c", 19); !reflect.DeepEqual(l.Branches, []uint64{1, 1}) {
		t.Errorf("summed branches %v", l.Branches)
	}
	if fn := total.Files["prog.c"].Functions["main"]; fn.Count != 2 {
		t.Errorf("main entered %d times, want 2", fn.Count)
	}
	for _, c := range []struct {
		file string
		line int
		want []string
	}{
		{"prog.c", 9, []string{"spec-square"}},
		{"prog.c", 14, []string{"spec-cube"}},
		{"prog.c", 17, []string{"spec-square", "spec-cube"}},
		{"util.h", 7, nil}, // instrumented, run by none
		{"util.h", 5, []string{"spec-square"}},
		{"prog.c", 1, nil}, // not instrumented
	} {
		if got := m.ExecutedBy(c.file, c.line); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:%d executed by %v, want %v", c.file, c.line, got, c.want)
		}
	}
	if got := m.Attribution("util.h"); len(got) != 5 || got[0].Line != 2 {
		t.Errorf("util.h attribution %v", got)
	}
	if got := m.Runs(); !reflect.DeepEqual(got, []string{"spec-square", "spec-cube"}) {
		t.Errorf("runs %v", got)
	}
}

func TestMergedRelative(t *testing.T) {
	var m gcov.Merged
	for _, name := range []string{"run1", "run2"} {
		f, _ := os.Open(filepath.Join("testdata", name+".json"))
		c, err := gcov.Parse(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		m.Add(name, c)
	}
	if got := m.ExecutedBy(fixtureDir+"/prog.c", 9); !reflect.DeepEqual(got, []string{"run1"}) {
		t.Errorf("before Relative: %v", got)
	}
	m.Relative(fixtureDir)
	if got := m.ExecutedBy("prog.c", 17); !reflect.DeepEqual(got, []string{"run1", "run2"}) {
		t.Errorf("after Relative: %v", got)
	}
}

// gcovTool returns gcc 12's gcov, skipping the test where it is missing.
func gcovTool(t *testing.T) gcov.Tool {
	t.Helper()
	p, err := exec.LookPath("gcov-12")
	if err != nil {
		t.Skip("gcov-12 not installed (Debian package gcc-12)")
	}
	return gcov.Tool{Path: p}
}

func TestToolRun(t *testing.T) {
	tool := gcovTool(t)
	// The .gcda files are named after runs, not after the object: Run
	// pairs them with the notes in a directory of its own.
	for _, run := range []string{"run1", "run2"} {
		got, err := tool.Run(context.Background(), gcov.Object{Notes: "testdata/prog.gcno", Data: "testdata/" + run + ".gcda"})
		if err != nil {
			t.Fatal(err)
		}
		got.Relative(fixtureDir)
		want := parseFile(t, run+".json")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: gcov on the .gcda differs from the committed %s.json", run, run)
		}
	}
	// Two objects at once, and one that never ran.
	c, err := tool.Run(context.Background(),
		gcov.Object{Notes: "testdata/prog.gcno", Data: "testdata/run1.gcda"},
		gcov.Object{Notes: "testdata/prog.gcno"})
	if err != nil {
		t.Fatal(err)
	}
	c.Relative(fixtureDir)
	if got := counts(c, "prog.c"); got[9] != 1 || got[14] != 0 || len(got) != 14 {
		t.Errorf("run1 plus an unrun object: %v", got)
	}
}

func TestToolErrors(t *testing.T) {
	tool := gcovTool(t)
	ctx := context.Background()
	if _, err := tool.Run(ctx, gcov.Object{Notes: "testdata/missing.gcno", Data: "testdata/run1.gcda"}); err == nil {
		t.Error("missing notes: no error")
	}
	// Notes that are no notes file.
	if _, err := tool.Run(ctx, gcov.Object{Notes: "testdata/prog.c", Data: "testdata/run1.gcda"}); err == nil {
		t.Error("bad notes: no error")
	}
	if _, err := (gcov.Tool{Path: "/nonexistent/gcov"}).Run(ctx, gcov.Object{Notes: "testdata/prog.gcno"}); err == nil {
		t.Error("missing gcov: no error")
	}
}

func TestFindObjects(t *testing.T) {
	data, notes := t.TempDir(), t.TempDir()
	for _, p := range []string{"kernel/sched/build_policy", "kernel/fork"} {
		os.MkdirAll(filepath.Join(data, filepath.Dir(p)), 0o755)
		os.MkdirAll(filepath.Join(notes, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(data, p+".gcda"), nil, 0o644)
		os.WriteFile(filepath.Join(notes, p+".gcno"), nil, 0o644)
	}
	objs, err := gcov.FindObjects(data, notes)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[1].Notes != filepath.Join(notes, "kernel/sched/build_policy.gcno") {
		t.Errorf("objects %+v", objs)
	}
	os.Remove(filepath.Join(notes, "kernel/fork.gcno"))
	if _, err := gcov.FindObjects(data, notes); err == nil {
		t.Error("a .gcda without its .gcno: no error")
	}
}
