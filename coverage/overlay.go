package coverage

import (
	"errors"
	"io/fs"
	"sort"
)

// Overlay returns a file system that reads each file from upper when upper
// has it, else from lower, and lists a directory's entries from both
// (upper's winning): the sources a kernel was compiled from, kept with
// it, over the tree they were copied from, for the files that were not
// kept. It implements fs.ReadDirFS and fs.StatFS, which fs.ReadDir,
// fs.WalkDir and fs.Stat use; a directory read through Open lists upper's
// entries only.
func Overlay(upper, lower fs.FS) fs.FS { return overlay{upper, lower} }

type overlay struct{ upper, lower fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.upper.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	return o.lower.Open(name)
}

func (o overlay) Stat(name string) (fs.FileInfo, error) {
	fi, err := fs.Stat(o.upper, name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return fi, err
	}
	return fs.Stat(o.lower, name)
}

func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	up, uerr := fs.ReadDir(o.upper, name)
	low, lerr := fs.ReadDir(o.lower, name)
	if uerr != nil && lerr != nil {
		return nil, uerr
	}
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, e := range append(up, low...) {
		if !seen[e.Name()] {
			seen[e.Name()] = true
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}
