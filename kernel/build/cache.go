package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/scxcheck/scxcheck/kernel"
)

// recipe changes whenever what Build does to a tree changes the kernel it
// produces, so that entries of an older scxcheck are not reused.
const recipe = 1

// arch is the only architecture scxcheck builds for.
const arch = "x86_64"

// KeyInputs are what a cached kernel depends on. Two builds with equal
// inputs produce the same kernel; any change of one is another entry.
type KeyInputs struct {
	Recipe    int      `json:"recipe"`
	Tree      string   `json:"tree"`              // Tree.Key
	Patches   []string `json:"patches,omitempty"` // SHA-256 of each, in order
	Base      string   `json:"base"`              // "make:tinyconfig" or "file:<sha256>"
	Fragments []string `json:"fragments"`         // SHA-256 of each, in order
	Arch      string   `json:"arch"`
	CC        string   `json:"cc"`     // first line of gcc --version
	LD        string   `json:"ld"`     // first line of ld --version
	Pahole    string   `json:"pahole"` // pahole --version
}

// Key is the hex SHA-256 of the inputs.
func (k KeyInputs) Key() string {
	data, _ := json.Marshal(k)
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// manifestName marks a complete cache entry; it is written last.
const manifestName = "scxcheck-build.json"

// entryFiles are the files of a cache entry that the manifest must list.
var entryFiles = []string{"vmlinux", "bzImage", "config"}

// manifest describes a cache entry: CacheDir/build/kernels/<version>-<key>/.
type manifest struct {
	Key      string            `json:"key"`
	Inputs   KeyInputs         `json:"inputs"`
	TreeDir  string            `json:"tree_dir"`
	Origin   string            `json:"origin,omitempty"`
	Version  string            `json:"version"`
	Base     string            `json:"base"`
	Frags    []string          `json:"fragment_names"`
	Patches  []string          `json:"patch_names,omitempty"`
	Built    time.Time         `json:"built"`
	Duration string            `json:"duration"`
	Files    map[string]string `json:"files"` // name -> SHA-256
}

// entryDir is where the kernel of key built from a tree of version lives.
func entryDir(cacheDir, version, key string) string {
	return filepath.Join(cacheDir, "build", "kernels", version+"-"+key[:16])
}

// errNoEntry says there is no complete entry.
var errNoEntry = errors.New("no complete cache entry")

// openEntry verifies the entry in dir against its manifest and opens its
// kernel.
func openEntry(dir, key string) (*kernel.Image, *manifest, error) {
	m, err := readManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	if m.Key != key {
		return nil, nil, fmt.Errorf("%w: %s is for key %s", errNoEntry, manifestName, m.Key)
	}
	for _, name := range entryFiles {
		if _, ok := m.Files[name]; !ok {
			return nil, nil, fmt.Errorf("%w: %s lists no %s", errNoEntry, manifestName, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.Files)) {
		h, err := hashPath(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", errNoEntry, err)
		}
		if h != m.Files[name] {
			return nil, nil, fmt.Errorf("%w: %s does not match its SHA-256 in %s", errNoEntry, name, manifestName)
		}
	}
	img, err := kernel.Open(filepath.Join(dir, "vmlinux"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errNoEntry, err)
	}
	return img, m, nil
}

// readManifest reads the manifest of the entry in dir, without checking
// the files it lists.
func readManifest(dir string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, fmt.Errorf("%w: no %s", errNoEntry, manifestName)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errNoEntry, manifestName, err)
	}
	return &m, nil
}

// writeManifest hashes the regular files in dir and writes the manifest.
func writeManifest(dir string, m manifest) error {
	m.Files = map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() == manifestName || e.Name() == "build.log" {
			continue
		}
		h, err := hashPath(filepath.Join(dir, e.Name()))
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
