package build

import (
	"bytes"
	"context"
	"encoding/gob"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// stamp is what the copy remembers of a tree file it copied.
type stamp struct {
	Size  int64
	MTime int64 // ns
	Mode  fs.FileMode
}

// syncTree makes dst a copy of the tree src (without .git), for building
// with patches applied and never touching src. statePath keeps, for every
// file copied, the size, time and mode it had in src: a file is copied again
// only when that changed, when it is in recopy (files the last patches
// changed), or when dst lacks it; what src lacks is removed. Copies get the
// current time, never an older one, so that the kernel's make rebuilds what
// depends on them even when the content goes back to an older version. It
// returns how many files it copied.
func syncTree(ctx context.Context, src, dst, statePath string, recopy []string) (int, error) {
	state := map[string]stamp{}
	if f, err := os.Open(statePath); err == nil {
		if gob.NewDecoder(f).Decode(&state) != nil {
			state = map[string]stamp{}
		}
		f.Close()
	}
	force := map[string]bool{}
	for _, p := range recopy {
		force[p] = true
	}
	next := make(map[string]stamp, len(state))
	seen := map[string]bool{}
	copied := 0
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && d.Name() == ".git" && path != src {
			return filepath.SkipDir
		}
		seen[rel] = true
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		old, oldErr := os.Lstat(target)
		switch {
		case d.IsDir():
			if oldErr == nil && !old.IsDir() {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			return os.MkdirAll(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if oldErr == nil {
				if cur, err := os.Readlink(target); err == nil && cur == link {
					return nil
				}
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			st := stamp{Size: info.Size(), MTime: info.ModTime().UnixNano(), Mode: info.Mode().Perm()}
			next[rel] = st
			if oldErr == nil && old.Mode().IsRegular() && state[rel] == st && !force[rel] {
				return nil
			}
			if oldErr == nil {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			copied++
			return fsutil.CopyNew(path, target, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		return copied, err
	}
	// Remove what src does not have.
	var extra []string
	err = filepath.WalkDir(dst, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, path)
		if rel != "." && !seen[rel] {
			extra = append(extra, path)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return copied, err
	}
	for _, p := range extra {
		if err := os.RemoveAll(p); err != nil {
			return copied, err
		}
	}
	return copied, writeGob(statePath, next)
}

// writeGob writes v to path atomically.
func writeGob(path string, v any) error {
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(v); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b.Bytes(), 0o644)
}
