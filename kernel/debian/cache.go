package debian

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/cache"
)

// ErrNotCached is wrapped by Cached's errors: no such entry, or one that is
// incomplete or corrupted.
var ErrNotCached = errors.New("kernel not cached")

// manifestName is the file that marks a cache entry complete. It is written
// last.
const manifestName = "scxcheck-kernel.json"

// kernels is the store of Debian kernels in cacheDir: an entry per release
// holding vmlinuz, vmlinux, config and, when the packages have it,
// System.map.
func kernels(cacheDir string) cache.Store {
	return cache.Store{
		Dir:      filepath.Join(cacheDir, "kernels"),
		Manifest: manifestName,
		Required: []string{"vmlinuz", "vmlinux", "config"},
	}
}

// manifest is what an entry's manifest says besides its files.
type manifest struct {
	Release string    `json:"release"` // e.g. 7.2.13+deb14-cloud-amd64
	Version string    `json:"version"` // Debian package version, e.g. 7.2.13-1
	Suite   string    `json:"suite"`   // sid or trixie-backports
	Mirror  string    `json:"mirror"`
	Fetched time.Time `json:"fetched"`
}

// DefaultCacheDir returns $XDG_CACHE_HOME/scxcheck, or ~/.cache/scxcheck.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory: %w", err)
	}
	return filepath.Join(dir, "scxcheck"), nil
}

// defaultName is the file in kernels/ that names the default kernel's
// release: the one resolved through Debian's metapackage when no release was
// asked for, remembered so that fetching other releases never changes what
// a default run tests.
const defaultName = "DEFAULT"

// DefaultRelease returns the release remembered as the default kernel in
// cacheDir, or an error wrapping ErrNotCached when none was chosen yet.
func DefaultRelease(cacheDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(cacheDir, "kernels", defaultName))
	if errors.Is(err, os.ErrNotExist) {
		return "", &cacheError{msg: "no default kernel chosen yet in " + filepath.Join(cacheDir, "kernels")}
	}
	if err != nil {
		return "", fmt.Errorf("read the default kernel's release: %w", err)
	}
	rel, err := normalizeRelease(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(cacheDir, "kernels", defaultName), err)
	}
	return rel, nil
}

// setDefault remembers rel as the default kernel.
func setDefault(cacheDir, rel string) error {
	dir := filepath.Join(cacheDir, "kernels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, defaultName), []byte(rel+"\n"), 0o644); err != nil {
		return fmt.Errorf("remember the default kernel: %w", err)
	}
	return nil
}

// Cached returns the kernel of release (see Fetcher.Version for the forms
// accepted) in cacheDir's kernels/ if its entry is complete, or the default
// kernel's (see DefaultRelease) if release is "". It checks every file's size and SHA-256
// against the entry's manifest (about 0.1 s for a 76 MB entry); an entry
// without a manifest or that does not match it is reported as corrupt. It
// does not check the kernel's config against kernel.RequiredSymbols: use
// Image.CheckConfig.
func Cached(cacheDir, release string) (*kernel.Image, error) {
	if release == "" {
		rel, err := DefaultRelease(cacheDir)
		if err != nil {
			return nil, err
		}
		release = rel
	}
	rel, err := normalizeRelease(release)
	if err != nil {
		return nil, fmt.Errorf("look for cached kernel: %w", err)
	}
	return openEntry(kernels(cacheDir), rel)
}

// cacheError is an error of Cached. It wraps ErrNotCached.
type cacheError struct {
	msg     string
	dir     string // the entry, when it exists
	corrupt bool   // the entry exists but is incomplete or corrupted
	detail  string // what is wrong with a corrupt entry
}

func (e *cacheError) Error() string { return e.msg }
func (e *cacheError) Unwrap() error { return ErrNotCached }

// openEntry verifies the entry of rel in store and opens its kernel.
func openEntry(store cache.Store, rel string) (*kernel.Image, error) {
	img, err := openVerified(store, rel)
	var ce *cache.Error
	switch {
	case err == nil:
		return img, nil
	case errors.Is(err, cache.ErrNotFound):
		return nil, &cacheError{msg: fmt.Sprintf("no cached kernel %s in %s", rel, store.Dir)}
	case errors.As(err, &ce):
		return nil, &cacheError{msg: fmt.Sprintf("cached kernel %s is incomplete or corrupted: %s", ce.Dir, ce.Detail),
			dir: ce.Dir, detail: ce.Detail, corrupt: true}
	}
	return nil, err
}

func openVerified(store cache.Store, rel string) (*kernel.Image, error) {
	var m manifest
	dir, err := store.Open(rel, &m)
	if err != nil {
		return nil, err
	}
	if m.Release != rel {
		return nil, store.Corrupt(rel, "%s is for release %q", manifestName, m.Release)
	}
	img, err := kernel.Open(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		return nil, store.Corrupt(rel, "%v", err)
	}
	if img.Vmlinux == "" || img.Config == "" {
		return nil, store.Corrupt(rel, "kernel.Open found no vmlinux or config beside vmlinuz")
	}
	return img, nil
}
