package debian

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
)

// makeEntry writes a complete synthetic cache entry for rel and returns its
// directory.
func makeEntry(t *testing.T, cacheDir, rel string) string {
	t.Helper()
	staged, err := kernels(cacheDir).Stage(rel)
	if err != nil {
		t.Fatal(err)
	}
	defer staged.Discard()
	elf := kerneltest.ELF(rel, true)
	config, err := os.ReadFile("testdata/config")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"vmlinuz":    kerneltest.BzImage(kerneltest.BzImageOptions{Release: rel, Payload: elf}),
		"vmlinux":    elf,
		"config":     config,
		"System.map": []byte("ffffffff81000000 T _text\n"),
	} {
		if err := os.WriteFile(filepath.Join(staged.Dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := staged.Commit(manifest{Release: rel, Version: "1", Suite: "sid"})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

const rel = "9.9.9+test-cloud-amd64"

func TestCachedComplete(t *testing.T) {
	cache := t.TempDir()
	dir := makeEntry(t, cache, rel)
	if err := setDefault(cache, rel); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{rel, "9.9.9+test", ""} {
		img, err := Cached(cache, r)
		if err != nil {
			t.Fatalf("Cached(%q): %v", r, err)
		}
		if img.Boot != filepath.Join(dir, "vmlinux") || img.BzImage != filepath.Join(dir, "vmlinuz") ||
			img.Config != filepath.Join(dir, "config") || img.Release != rel {
			t.Errorf("Cached(%q) = %+v", r, img)
		}
	}
}

// The default kernel is the remembered one, never simply the newest entry:
// fetching another release must not change what a default run tests.
func TestCachedDefaultIsRemembered(t *testing.T) {
	cache := t.TempDir()
	makeEntry(t, cache, "7.2.13+deb14-cloud-amd64")
	makeEntry(t, cache, "7.3.4+deb13-cloud-amd64")

	if _, err := Cached(cache, ""); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Cached default without a remembered default = %v, want ErrNotCached", err)
	}
	if err := setDefault(cache, "7.2.13+deb14-cloud-amd64"); err != nil {
		t.Fatal(err)
	}
	img, err := Cached(cache, "")
	if err != nil {
		t.Fatal(err)
	}
	if img.Release != "7.2.13+deb14-cloud-amd64" {
		t.Errorf("Cached default = %s, want the remembered 7.2.13+deb14-cloud-amd64, not the newest entry", img.Release)
	}
	if rel, err := DefaultRelease(cache); err != nil || rel != "7.2.13+deb14-cloud-amd64" {
		t.Errorf("DefaultRelease = %q, %v", rel, err)
	}

	// The remembered default whose entry is gone is not cached: it is
	// fetched again by that exact release, never replaced by another.
	os.RemoveAll(filepath.Join(cache, "kernels", "7.2.13+deb14-cloud-amd64"))
	if _, err := Cached(cache, ""); !errors.Is(err, ErrNotCached) {
		t.Errorf("Cached default with its entry gone = %v, want ErrNotCached", err)
	}
}

func TestCachedAbsent(t *testing.T) {
	cache := t.TempDir()
	_, err := Cached(cache, rel)
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "no cached kernel "+rel) {
		t.Errorf("Cached(empty cache, %s) = %v", rel, err)
	}
	_, err = Cached(cache, "")
	if !errors.Is(err, ErrNotCached) {
		t.Errorf(`Cached(empty cache, "") = %v`, err)
	}
	_, err = Cached(cache, "latest")
	if !errors.Is(err, ErrUnknownVersion) {
		t.Errorf(`Cached(cache, "latest") = %v, want ErrUnknownVersion`, err)
	}
}
