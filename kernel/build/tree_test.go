package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestContentHashFollowsContentNotTimes(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.c": "a", "sub/b.c": "b", ".git/HEAD": "ignored"})
	index := filepath.Join(t.TempDir(), "tree.index")
	ctx := context.Background()
	h1, err := contentHash(ctx, dir, index)
	if err != nil {
		t.Fatal(err)
	}
	// Make the index trustworthy (entries older than a second), then
	// hash again: the same.
	past := time.Now().Add(-time.Hour)
	for _, f := range []string{"a.c", "sub/b.c"} {
		os.Chtimes(filepath.Join(dir, f), past, past)
	}
	h2, _ := contentHash(ctx, dir, index)
	if h1 != h2 {
		t.Error("times changed the hash")
	}
	os.WriteFile(filepath.Join(dir, ".git/HEAD"), []byte("other"), 0o644)
	if h, _ := contentHash(ctx, dir, index); h != h1 {
		t.Error(".git changed the hash")
	}
	// The same size, another content, even with the old time: another hash.
	os.WriteFile(filepath.Join(dir, "a.c"), []byte("x"), 0o644)
	h3, _ := contentHash(ctx, dir, index)
	if h3 == h1 {
		t.Error("a changed file kept the hash")
	}
	os.Chmod(filepath.Join(dir, "a.c"), 0o755)
	if h, _ := contentHash(ctx, dir, index); h == h3 {
		t.Error("the executable bit did not count")
	}
	os.WriteFile(filepath.Join(dir, "new.c"), nil, 0o644)
	if h, _ := contentHash(ctx, dir, index); h == h3 {
		t.Error("a new file kept the hash")
	}
}

func TestGitKey(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := writeTree(t, map[string]string{"Makefile": "VERSION = 7\nPATCHLEVEL = 2\n", "a.c": "a"})
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-qm", "one")
	ctx := context.Background()
	clean, err := gitKey(ctx, ExecRunner{}, dir)
	if err != nil || !strings.HasPrefix(clean, "git:") || strings.Contains(clean, "+") {
		t.Fatalf("clean checkout: key %q, err %v", clean, err)
	}
	os.WriteFile(filepath.Join(dir, "a.c"), []byte("b"), 0o644)
	dirty, _ := gitKey(ctx, ExecRunner{}, dir)
	if !strings.HasPrefix(dirty, clean+"+") {
		t.Errorf("dirty checkout: key %q, want %q+<hash>", dirty, clean)
	}
	os.WriteFile(filepath.Join(dir, "new.c"), []byte("n"), 0o644)
	untracked, _ := gitKey(ctx, ExecRunner{}, dir)
	if untracked == dirty {
		t.Error("an untracked file did not change the key")
	}
	os.WriteFile(filepath.Join(dir, "new.c"), []byte("m"), 0o644)
	if k, _ := gitKey(ctx, ExecRunner{}, dir); k == untracked {
		t.Error("an untracked file's content did not change the key")
	}
}

func TestSyncTreeCopiesWhatChangedAndNeverGoesBackInTime(t *testing.T) {
	src := writeTree(t, map[string]string{"a.c": "a", "sub/b.c": "b", ".git/x": "x"})
	os.Symlink("a.c", filepath.Join(src, "link"))
	past := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(src, "a.c"), past, past)
	work := t.TempDir()
	dst, state := filepath.Join(work, "copy"), filepath.Join(work, "sync.state")
	ctx := context.Background()
	sync := func(recopy ...string) int {
		t.Helper()
		n, err := syncTree(ctx, src, dst, state, recopy)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	mtime := func(name string) time.Time {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	if n := sync(); n != 2 {
		t.Fatalf("first sync copied %d files, want 2", n)
	}
	if _, err := os.Stat(filepath.Join(dst, ".git")); err == nil {
		t.Error(".git was copied")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "a.c" {
		t.Errorf("link -> %q", l)
	}
	if n := sync(); n != 0 {
		t.Errorf("an unchanged tree copied %d files", n)
	}

	// A patch changed a.c in the copy and left an extra file: the next
	// sync restores a.c with a newer time, never the tree's older one.
	before := mtime("a.c")
	os.WriteFile(filepath.Join(dst, "a.c"), []byte("patched"), 0o644)
	patched := mtime("a.c")
	os.WriteFile(filepath.Join(dst, "sub/new.c"), nil, 0o644)
	os.MkdirAll(filepath.Join(dst, "newdir/deep"), 0o755)
	if n := sync("a.c"); n != 1 {
		t.Errorf("restoring a.c copied %d files", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a.c")); string(b) != "a" {
		t.Errorf("a.c = %q", b)
	}
	if m := mtime("a.c"); m.Before(patched) || m.Before(before) {
		t.Errorf("restored a.c has time %v, older than the patched one %v", m, patched)
	}
	for _, gone := range []string{"sub/new.c", "newdir"} {
		if _, err := os.Stat(filepath.Join(dst, gone)); err == nil {
			t.Errorf("%s survived", gone)
		}
	}
	if n := sync(); n != 0 {
		t.Errorf("a restored file was copied again (%d)", n)
	}

	// A file changed in the tree is copied again.
	later := time.Now().Add(time.Second)
	os.WriteFile(filepath.Join(src, "sub/b.c"), []byte("B"), 0o644)
	os.Chtimes(filepath.Join(src, "sub/b.c"), later, later)
	if n := sync(); n != 1 {
		t.Errorf("a changed tree file: copied %d", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub/b.c")); string(b) != "B" {
		t.Errorf("b.c = %q", b)
	}
}

func TestOpenTreeReadsTheVersion(t *testing.T) {
	tr, err := OpenTree(kerneltest.WriteTree(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Version != "7.2.0-fake" || !filepath.IsAbs(tr.Dir) {
		t.Errorf("tree %+v", tr)
	}
}

func TestNewestTreeAndKernelSeries(t *testing.T) {
	trees := t.TempDir()
	for _, v := range []string{"7.2.9-1", "7.2.13-1", "7.2.13-1~bpo1"} {
		kerneltest.WriteTree(t, filepath.Join(trees, "linux-source-7.2_"+v))
	}
	os.MkdirAll(filepath.Join(trees, "linux-source-7.2_7.2.99-1"), 0o755) // incomplete: no Makefile
	tr := newestTree(trees, "linux-source-7.2")
	if tr == nil || filepath.Base(tr.Dir) != "linux-source-7.2_7.2.13-1" || tr.Origin != "Debian linux-source-7.2 7.2.13-1" {
		t.Errorf("newest tree %+v", tr)
	}
	if newestTree(trees, "linux-source-7.3") != nil {
		t.Error("found a 7.3 tree")
	}
}
