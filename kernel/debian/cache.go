package debian

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/kernel"
)

// ErrNotCached is wrapped by Cached's errors: no such entry, or one that is
// incomplete or corrupted.
var ErrNotCached = errors.New("kernel not cached")

// manifestName is the file that marks a cache entry complete. It is written
// last.
const manifestName = "scxcheck-kernel.json"

// Files of a cache entry. System.map is optional.
var entryFiles = []string{"vmlinuz", "vmlinux", "config"}

// manifest describes a cache entry.
type manifest struct {
	Release string              `json:"release"` // e.g. 7.2.13+deb14-cloud-amd64
	Version string              `json:"version"` // Debian package version, e.g. 7.2.13-1
	Suite   string              `json:"suite"`   // sid or trixie-backports
	Mirror  string              `json:"mirror"`
	Fetched time.Time           `json:"fetched"`
	Files   map[string]fileHash `json:"files"`
}

type fileHash struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
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
	tmp := filepath.Join(dir, "."+defaultName+".tmp")
	if err := os.WriteFile(tmp, []byte(rel+"\n"), 0o644); err != nil {
		return fmt.Errorf("remember the default kernel: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, defaultName))
}

// Cached returns the kernel of release (see Fetcher.Version for the forms
// accepted) in cacheDir's kernels/ if its entry is complete, or the default
// kernel's (see DefaultRelease) if release is "". It checks every file's size and SHA-256
// against the entry's manifest (about 0.1 s for a 76 MB entry); an entry
// without a manifest or that does not match it is reported as corrupt. It
// does not check the kernel's config against kernel.RequiredSymbols: use
// Image.CheckConfig.
func Cached(cacheDir, release string) (*kernel.Image, error) {
	kernels := filepath.Join(cacheDir, "kernels")
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
	return openEntry(filepath.Join(kernels, rel))
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

// openEntry verifies the cache entry in dir and opens its kernel.
func openEntry(dir string) (*kernel.Image, error) {
	corrupt := func(format string, args ...any) error {
		detail := fmt.Sprintf(format, args...)
		return &cacheError{
			msg:     fmt.Sprintf("cached kernel %s is incomplete or corrupted: %s", dir, detail),
			dir:     dir,
			detail:  detail,
			corrupt: true,
		}
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, &cacheError{msg: fmt.Sprintf("no cached kernel %s in %s", filepath.Base(dir), filepath.Dir(dir))}
	}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, corrupt("no %s", manifestName)
	}
	if err != nil {
		return nil, corrupt("%v", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, corrupt("%s: %v", manifestName, err)
	}
	if m.Release != filepath.Base(dir) {
		return nil, corrupt("%s is for release %q", manifestName, m.Release)
	}
	for _, name := range entryFiles {
		if _, ok := m.Files[name]; !ok {
			return nil, corrupt("%s lists no %s", manifestName, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Files)) {
		want := m.Files[name]
		got, err := hashFile(filepath.Join(dir, name))
		if err != nil {
			return nil, corrupt("%v", err)
		}
		if got.Size != want.Size {
			return nil, corrupt("%s has %d bytes, %s says %d", name, got.Size, manifestName, want.Size)
		}
		if got.SHA256 != want.SHA256 {
			return nil, corrupt("%s does not match its SHA-256 in %s", name, manifestName)
		}
	}
	img, err := kernel.Open(filepath.Join(dir, "vmlinuz"))
	if err != nil {
		return nil, corrupt("%v", err)
	}
	if img.Vmlinux == "" || img.Config == "" {
		return nil, corrupt("kernel.Open found no vmlinux or config beside vmlinuz")
	}
	return img, nil
}

// hashFile returns the size and SHA-256 of the file at path.
func hashFile(path string) (fileHash, error) {
	f, err := os.Open(path)
	if err != nil {
		return fileHash{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fileHash{}, err
	}
	return fileHash{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeManifest hashes the entry's files in dir and writes its manifest.
func writeManifest(dir string, m manifest) error {
	m.Files = map[string]fileHash{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == manifestName {
			continue
		}
		h, err := hashFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		m.Files[e.Name()] = h
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifestName), append(data, '\n'), 0o644)
}
