package coverage_test

import (
	"io/fs"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/scxcheck/scxcheck/coverage"
)

func TestOverlay(t *testing.T) {
	upper := fstest.MapFS{
		"kernel/sched/ext/ext.c": {Data: []byte("built\n")},
	}
	lower := fstest.MapFS{
		"kernel/sched/ext/ext.c":  {Data: []byte("tree\n")},
		"kernel/sched/ext/idle.c": {Data: []byte("idle\n")},
		"tools/sched_ext/x.bpf.c": {Data: []byte("bpf\n")},
	}
	o := coverage.Overlay(upper, lower)
	for name, want := range map[string]string{
		"kernel/sched/ext/ext.c":  "built\n",
		"kernel/sched/ext/idle.c": "idle\n",
		"tools/sched_ext/x.bpf.c": "bpf\n",
	} {
		if b, err := fs.ReadFile(o, name); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	ents, err := fs.ReadDir(o, "kernel/sched/ext")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if err != nil || !slices.Equal(names, []string{"ext.c", "idle.c"}) {
		t.Errorf("ReadDir = %q, %v", names, err)
	}
	if _, err := fs.Stat(o, "tools/sched_ext"); err != nil {
		t.Errorf("a directory of the lower alone: %v", err)
	}
	if _, err := fs.ReadFile(o, "nowhere.c"); err == nil {
		t.Error("a file neither has was read")
	}
	var walked []string
	fs.WalkDir(o, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			walked = append(walked, p)
		}
		return nil
	})
	if len(walked) != 3 {
		t.Errorf("walked %q", walked)
	}
}
