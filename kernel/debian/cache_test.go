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
	dir := filepath.Join(cacheDir, "kernels", rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
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
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeManifest(dir, manifest{Release: rel, Version: "1", Suite: "sid"}); err != nil {
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

func TestCachedIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string
	}{
		{"truncated vmlinux", func(dir string) error {
			return os.Truncate(filepath.Join(dir, "vmlinux"), 10)
		}, "vmlinux has 10 bytes"},
		{"changed config", func(dir string) error {
			p := filepath.Join(dir, "config")
			data, _ := os.ReadFile(p)
			data[len(data)-2] ^= 1
			return os.WriteFile(p, data, 0o644)
		}, "config does not match its SHA-256"},
		{"no manifest", func(dir string) error {
			return os.Remove(filepath.Join(dir, manifestName))
		}, "no " + manifestName},
		{"missing file", func(dir string) error {
			return os.Remove(filepath.Join(dir, "System.map"))
		}, "no such file"},
		{"bad manifest", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, manifestName), []byte(`{"release": "9.9`), 0o644)
		}, "unexpected end of JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			dir := makeEntry(t, cache, rel)
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			img, err := Cached(cache, rel)
			if err == nil {
				t.Fatalf("Cached = %+v, want an error", img)
			}
			if !errors.Is(err, ErrNotCached) {
				t.Errorf("error %v does not wrap ErrNotCached", err)
			}
			for _, want := range []string{dir + " is incomplete or corrupted", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if _, err := Cached(cache, ""); !errors.Is(err, ErrNotCached) {
				t.Errorf(`Cached("") = %v, want ErrNotCached`, err)
			}
		})
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
