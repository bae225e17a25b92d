package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/kernel/kconfig"
	"golang.org/x/sys/unix"
)

func TestFakeMakePruneKeepsTheMostRecentlyUsed(t *testing.T) {
	fb := newFakeBuild(t)
	first := fb.mustBuild(false)
	fb.opts.Fragments = append(fb.opts.Fragments, kconfig.Fragment{Name: "extra.config", Data: []byte("CONFIG_QUX=y\n")})
	second := fb.mustBuild(false)
	// A cache hit on the first kernel makes it the most recently used.
	past := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(first.Entry, manifestName), past, past)
	os.Chtimes(filepath.Join(second.Entry, manifestName), past.Add(time.Minute), past.Add(time.Minute))
	fb.opts.Fragments = fb.opts.Fragments[:1]
	fb.mustBuild(true)

	cache := fb.opts.CacheDir
	partial := filepath.Join(cache, "build", "kernels", "7.2.0-0123456789abcdef")
	os.MkdirAll(partial, 0o755)
	os.WriteFile(filepath.Join(partial, "vmlinux"), []byte("half"), 0o644)
	collecting := filepath.Join(cache, "build", "kernels", ".partial-123")
	os.MkdirAll(collecting, 0o755)
	gone := filepath.Join(cache, "build", "work", "00000000000000aa")
	os.MkdirAll(filepath.Join(gone, "obj"), 0o755)
	os.WriteFile(filepath.Join(gone, "tree"), []byte(filepath.Join(t.TempDir(), "removed-tree")+"\n"), 0o644)
	busy := filepath.Join(cache, "build", "work", "00000000000000bb")
	os.MkdirAll(busy, 0o755)
	os.WriteFile(filepath.Join(busy, "tree"), []byte("/nonexistent/tree\n"), 0o644)
	lock, err := os.Create(busy + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	dry, err := Prune(context.Background(), PruneOptions{CacheDir: cache, Keep: 1, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{second.Entry, partial, gone} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("a dry run removed %s", d)
		}
	}
	why, remove := map[string]string{}, map[string]bool{}
	for _, it := range dry {
		why[it.Dir], remove[it.Dir] = it.Why, it.Remove
	}
	for _, d := range []string{second.Entry, partial, gone} {
		if !remove[d] {
			t.Errorf("%s is not to be removed (why %q)", d, why[d])
		}
	}
	if why[first.Entry] != "" || remove[first.Entry] {
		t.Errorf("the most recently used kernel is to be removed: %q", why[first.Entry])
	}
	if !strings.Contains(why[second.Entry], "most recently used") {
		t.Errorf("the older kernel: why = %q", why[second.Entry])
	}
	if !strings.Contains(why[partial], "incomplete") {
		t.Errorf("the entry without a manifest: why = %q", why[partial])
	}
	if !strings.Contains(why[gone], "is gone") {
		t.Errorf("the build dir of a removed tree: why = %q", why[gone])
	}
	if _, listed := why[collecting]; listed {
		t.Error("a build's .partial directory is listed")
	}

	items, err := Prune(context.Background(), PruneOptions{CacheDir: cache, Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{second.Entry, partial, gone, gone + ".lock"} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s not removed (%v)", d, err)
		}
	}
	for _, d := range []string{first.Entry, busy, collecting} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed", d)
		}
	}
	for _, it := range items {
		if it.Dir == busy && (it.Remove || !strings.Contains(it.Why, "a build is running")) {
			t.Errorf("locked build dir: remove %v, why %q; want it kept, saying why", it.Remove, it.Why)
		}
	}
	if again := fb.mustBuild(true); again.Entry != first.Entry {
		t.Errorf("the kept kernel is no longer a cache hit")
	}
}

func TestPruneEmptyCacheAndBadKeep(t *testing.T) {
	items, err := Prune(context.Background(), PruneOptions{CacheDir: t.TempDir(), Keep: 5})
	if err != nil || len(items) != 0 {
		t.Errorf("empty cache: %d items, %v", len(items), err)
	}
	if _, err := Prune(context.Background(), PruneOptions{CacheDir: t.TempDir(), Keep: -1}); err == nil {
		t.Error("Keep -1 accepted")
	}
}
