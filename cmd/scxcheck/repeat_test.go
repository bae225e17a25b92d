package main

import (
	"flag"
	"io"
	"slices"
	"testing"
)

// A repeated run passes the user's flags on to each child run, except the
// ones it handles itself and the kernel's source, which it resolved once.
func TestChildRunArgs(t *testing.T) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var k kernelFlags
	k.register(fs)
	var n int
	var v bool
	for _, name := range []string{"label-filter", "focus", "junit", "artifacts", "json-report", "tree", "patch"} {
		if fs.Lookup(name) == nil { // --tree and --patch may be kernelFlags'
			fs.String(name, "", "")
		}
	}
	fs.IntVar(&n, "repeat", 1, "")
	fs.BoolVar(&v, "v", false, "")
	err := fs.Parse([]string{"--kernel=/k/bzImage", "--cache=/c", "--repeat=5", "--junit=j.xml", "--artifacts=a",
		"--label-filter=boot || dispatch", "--accel", "tcg", "-v", "--tree=/src", "--patch=p", "--no-test-patch"})
	if err != nil {
		t.Fatal(err)
	}
	got := childRunArgs(fs, "/cache/vmlinux", repeatFlags)
	want := []string{"run", "--kernel=/cache/vmlinux", "--accel=tcg", "--label-filter=boot || dispatch", "--v=true"}
	if !slices.Equal(got, want) {
		t.Errorf("child args %q, want %q", got, want)
	}
}
