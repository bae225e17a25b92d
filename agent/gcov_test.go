package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A gcov root as the kernel's debugfs lays it out: the build directory's
// path below it, a .gcda file per profiled object, the .gcno beside it a
// link to the build machine's file, and reset.
func fakeGcovRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	sched := filepath.Join(root, "build/obj/kernel/sched")
	if err := os.MkdirAll(sched, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"build_policy.gcda":  "counters",
		"reset":              "",
		"../../other/x.gcda": "elsewhere",
	} {
		p := filepath.Join(sched, name)
		if name == "reset" {
			p = filepath.Join(root, name)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/nowhere/build_policy.gcno", filepath.Join(sched, "build_policy.gcno")); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCollectGcov(t *testing.T) {
	root := fakeGcovRoot(t)
	files, err := collectGcov(root, "/build/obj/kernel/sched")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Path != "build_policy.gcda" || string(files[0].Data) != "counters" {
		t.Errorf("collected %+v, want build_policy.gcda alone (not the .gcno link, nothing outside the directory)", files)
	}
	all, err := collectGcov(root, "")
	if err != nil || len(all) != 2 {
		t.Errorf("the whole root: %d files, %v; want 2", len(all), err)
	}
	if _, err := collectGcov(root, "../etc"); err == nil {
		t.Error("a directory outside the root was read")
	}
}

func TestResetGcov(t *testing.T) {
	root := fakeGcovRoot(t)
	if err := resetGcov(root); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "reset")); len(b) == 0 {
		t.Error("nothing written to reset")
	}
}

// A kernel without gcov support says what to build, and the errno stays in
// the chain (the host tells it from other failures).
func TestNoGcov(t *testing.T) {
	root := filepath.Join(t.TempDir(), "gcov")
	for name, err := range map[string]error{
		"reset":   resetGcov(root),
		"collect": func() error { _, err := collectGcov(root, "x"); return err }(),
	} {
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "kernel build --coverage") {
			t.Errorf("%s without gcov: %v", name, err)
		}
	}
}
