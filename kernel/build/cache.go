package build

import (
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/cache"
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
	// Coverage is coverageRecipe for a coverage kernel (Options.
	// Coverage), 0 otherwise.
	Coverage int `json:"coverage,omitempty"`
}

// Key is the hex SHA-256 of the inputs.
func (k KeyInputs) Key() string {
	data, _ := json.Marshal(k)
	return fsutil.HashBytes(data)
}

// manifestName marks a complete cache entry; it is written last.
const manifestName = "scxcheck-build.json"

// kernels is the store of built kernels in cacheDir: an entry per kernel,
// <version>-<key>, holding vmlinux, bzImage, config, System.map and the
// build log (not in the manifest).
func kernels(cacheDir string) cache.Store {
	return cache.Store{
		Dir:      filepath.Join(cacheDir, "build", "kernels"),
		Manifest: manifestName,
		Required: []string{"vmlinux", "bzImage", "config"},
		Unlisted: []string{"build.log"},
		Replace:  true, // Force builds replace the entry
	}
}

// manifest is what an entry's manifest says besides its files.
type manifest struct {
	Key      string    `json:"key"`
	Inputs   KeyInputs `json:"inputs"`
	TreeDir  string    `json:"tree_dir"`
	Origin   string    `json:"origin,omitempty"`
	Version  string    `json:"version"`
	Base     string    `json:"base"`
	Frags    []string  `json:"fragment_names"`
	Patches  []string  `json:"patch_names,omitempty"`
	Built    time.Time `json:"built"`
	Duration string    `json:"duration"`
	// Coverage is set for a coverage kernel; its files are in coverageDir.
	Coverage *Coverage `json:"coverage,omitempty"`
}

// entryName is the entry of the kernel of key built from a tree of version.
func entryName(version, key string) string { return version + "-" + key[:16] }

// openEntry verifies the entry name against its manifest and opens its
// kernel. Errors are *cache.Error.
func openEntry(store cache.Store, name, key string) (*kernel.Image, *manifest, error) {
	var m manifest
	dir, err := store.Open(name, &m)
	if err != nil {
		return nil, nil, err
	}
	if m.Key != key {
		return nil, nil, store.Corrupt(name, "%s is for key %s", manifestName, m.Key)
	}
	img, err := kernel.Open(filepath.Join(dir, "vmlinux"))
	if err != nil {
		return nil, nil, store.Corrupt(name, "%v", err)
	}
	return img, &m, nil
}
