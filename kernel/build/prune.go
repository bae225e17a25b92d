package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/kernel/cache"
)

// CacheItem is one thing the kernel-build cache holds: a built kernel
// (build/kernels/<version>-<key>) or the build directory of one tree
// (build/work/<hash>: a copy of the tree and its object files).
type CacheItem struct {
	Kind string // "kernel" or "build dir"
	Dir  string
	Size int64
	// Used is when a kernel was last built or taken from the cache, or when
	// a build directory was last built in.
	Used time.Time
	// What says what the item is for: the tree, its version and patches.
	What string
	// Remove is set on the items Prune removes (or, with DryRun, would);
	// Why gives the reason, or why an item that qualified was kept.
	Remove bool
	Why    string
}

// PruneOptions say what Prune keeps.
type PruneOptions struct {
	CacheDir string
	// Keep is how many built kernels to keep, most recently used first.
	Keep int
	// DryRun lists what would be removed and removes nothing.
	DryRun bool
}

// Prune frees space in the kernel-build cache: it removes built kernels
// beyond the Keep most recently used, incomplete entries, and the build
// directories of trees that no longer exist. A build directory in use by a
// running build (its lock held) is never touched. It returns every item it
// looked at, those removed (or, with DryRun, to be removed) marked Remove.
func Prune(ctx context.Context, o PruneOptions) ([]CacheItem, error) {
	if o.Keep < 0 {
		return nil, fmt.Errorf("prune kernel build cache: keep %d kernels: must be 0 or more", o.Keep)
	}
	root := filepath.Join(o.CacheDir, "build")
	var items []CacheItem

	store := kernels(o.CacheDir)
	names, err := store.List() // not those of builds collecting their result
	if err != nil {
		return nil, fmt.Errorf("prune kernel build cache: %w", err)
	}
	var complete []int
	for _, name := range names {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		it := CacheItem{Kind: "kernel", Dir: store.Path(name), Size: cache.DiskUsage(store.Path(name))}
		var m manifest
		var ce *cache.Error
		if err := store.ReadManifest(name, &m); errors.As(err, &ce) {
			it.Remove, it.Why = true, "incomplete: "+ce.Detail
		} else {
			it.Used = store.Used(name) // a cache hit refreshes it
			it.What = describe(&m)
			complete = append(complete, len(items))
		}
		items = append(items, it)
	}
	sort.SliceStable(complete, func(a, b int) bool { return items[complete[a]].Used.After(items[complete[b]].Used) })
	for n, i := range complete {
		if n >= o.Keep {
			items[i].Remove, items[i].Why = true, fmt.Sprintf("not among the %d most recently used kernels", o.Keep)
		}
	}

	works, err := cache.Dirs(filepath.Join(root, "work"))
	if err != nil {
		return nil, fmt.Errorf("prune kernel build cache: %w", err)
	}
	for _, dir := range works {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		it := CacheItem{Kind: "build dir", Dir: dir, Size: cache.DiskUsage(dir), Used: modTime(filepath.Join(dir, "build.log"))}
		tree := readTreeName(dir)
		it.What = "tree " + tree
		if tree == "" {
			it.Remove, it.Why = true, "names no tree"
		} else if _, err := os.Stat(filepath.Join(tree, "Makefile")); err != nil {
			it.Remove, it.Why = true, "its tree "+tree+" is gone"
		}
		items = append(items, it)
	}

	sort.SliceStable(items, func(a, b int) bool {
		if items[a].Kind != items[b].Kind {
			return items[a].Kind == "kernel"
		}
		return items[a].Used.After(items[b].Used)
	})
	for i := range items {
		it := &items[i]
		if !it.Remove || o.DryRun {
			continue
		}
		if err := removeUnlocked(it); err != nil {
			return items, fmt.Errorf("prune kernel build cache: remove %s: %w", it.Dir, err)
		}
	}
	return items, nil
}

// removeUnlocked removes an item; a build directory only while holding its
// lock, so that a running build keeps it (the item then says so).
func removeUnlocked(it *CacheItem) error {
	if it.Kind != "build dir" {
		return os.RemoveAll(it.Dir)
	}
	removed, err := cache.RemoveUnlocked(it.Dir)
	if err == nil && !removed {
		it.Remove, it.Why = false, "kept: a build is running in it"
	}
	return err
}

func describe(m *manifest) string {
	s := m.Version + " from " + m.TreeDir
	if len(m.Patches) > 0 {
		s += " + " + strings.Join(m.Patches, ", ")
	}
	return s
}

func readTreeName(work string) string {
	data, err := os.ReadFile(filepath.Join(work, "tree"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
