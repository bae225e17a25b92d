package gcov_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/gcov"
)

func merged(t *testing.T) *gcov.Merged {
	t.Helper()
	var m gcov.Merged
	m.Add("spec square", parseFile(t, "run1.json"))
	m.Add("spec cube", parseFile(t, "run2.json"))
	return &m
}

func TestWriteLCOV(t *testing.T) {
	var buf bytes.Buffer
	if err := merged(t).Total().WriteLCOV(&buf, gcov.LCOV{TestName: "scxcheck run", SourceRoot: "/src"}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	want := `TN:scxcheck_run
SF:/src/prog.c
FN:7,square
FN:12,cube
FN:17,main
FNDA:1,square
FNDA:1,cube
FNDA:2,main
FNF:3
FNH:3
BRDA:19,0,0,1
BRDA:19,0,1,1
BRDA:22,0,0,1
BRDA:22,0,1,1
BRDA:26,0,0,3
BRDA:26,0,1,2
BRF:6
BRH:6
DA:7,1
DA:9,1
DA:12,1
DA:14,1
DA:17,2
DA:19,2
DA:20,2
DA:22,2
DA:23,1
DA:25,1
DA:26,5
DA:27,3
DA:28,2
DA:29,2
LF:14
LH:14
end_of_record
TN:scxcheck_run
SF:/src/util.h
`
	if !strings.HasPrefix(out, want) {
		t.Fatalf("lcov:\n%s\nwant it to start with:\n%s", out, want)
	}
	if !strings.Contains(out, "DA:7,0\nDA:8,2\nLF:6\nLH:5\nend_of_record\n") {
		t.Errorf("util.h record:\n%s", out[len(want):])
	}
}

func TestLCOVRoundTrip(t *testing.T) {
	m := merged(t)
	var buf bytes.Buffer
	if err := m.WriteLCOV(&buf, gcov.LCOV{}); err != nil {
		t.Fatal(err)
	}
	tests, err := gcov.ParseLCOV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(tests) != 2 || tests["spec_square"] == nil || tests["spec_cube"] == nil {
		t.Fatalf("tests %v", tests)
	}
	for name, run := range map[string]string{"spec_square": "spec square", "spec_cube": "spec cube"} {
		got, want := tests[name], m.Run(run)
		for _, p := range want.Paths() {
			if !reflect.DeepEqual(counts(got, p), counts(want, p)) {
				t.Errorf("%s %s: %v, want %v", name, p, counts(got, p), counts(want, p))
			}
			for fn, wf := range want.Files[p].Functions {
				if gf := got.Files[p].Functions[fn]; gf == nil || gf.Count != wf.Count || gf.StartLine != wf.StartLine {
					t.Errorf("%s %s %s: %+v, want %+v", name, p, fn, gf, wf)
				}
			}
		}
		// A branch of a line that never ran reads back as zero ("-").
		if l, _ := got.Line("util.h", 4); name == "spec_cube" && !reflect.DeepEqual(l.Branches, []uint64{0, 0}) {
			t.Errorf("unrun branches %v", l.Branches)
		}
	}
}

func TestParseLCOVErrors(t *testing.T) {
	for _, in := range []string{
		"DA:1,1\n",                        // outside a record
		"SF:a.c\nDA:x,1\nend_of_record\n", // bad number
		"SF:a.c\nDA:1,1\n",                // no end
		"end_of_record\n",
	} {
		if _, err := gcov.ParseLCOV(strings.NewReader(in)); err == nil {
			t.Errorf("ParseLCOV(%q) succeeded", in)
		}
	}
}

// TestGenhtml checks that Debian's lcov renders the tracefile without
// errors, per-run details included. It is skipped where genhtml is not
// installed (Debian package lcov).
func TestGenhtml(t *testing.T) {
	genhtml, err := exec.LookPath("genhtml")
	if err != nil {
		t.Skip("genhtml not installed (Debian package lcov)")
	}
	src, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := merged(t)
	for name, write := range map[string]func(*os.File) error{
		"total.info":   func(f *os.File) error { return m.Total().WriteLCOV(f, gcov.LCOV{TestName: "all", SourceRoot: src}) },
		"per-run.info": func(f *os.File) error { return m.WriteLCOV(f, gcov.LCOV{SourceRoot: src}) },
	} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := write(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, err := exec.Command(genhtml, "--branch-coverage", "--show-details", "--output-directory", filepath.Join(dir, name+".html"), filepath.Join(dir, name)).CombinedOutput()
		if err != nil || bytes.Contains(bytes.ToLower(out), []byte("warning")) {
			t.Fatalf("genhtml %s: %v\n%s", name, err, out)
		}
		if !bytes.Contains(out, []byte("(19 of 20 lines)")) {
			t.Errorf("genhtml %s summary:\n%s", name, out)
		}
	}
}
