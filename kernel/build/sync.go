package build

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// syncTree makes dst a copy of the tree src (without .git): files whose size,
// modification time or executable bit differ are copied with src's times,
// so that the kernel's make sees unchanged files as unchanged; what src
// lacks is removed. It returns how many files it copied.
func syncTree(ctx context.Context, src, dst string) (int, error) {
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
			if oldErr == nil && old.Mode().IsRegular() && old.Size() == info.Size() &&
				old.ModTime().Equal(info.ModTime()) && old.Mode().Perm() == info.Mode().Perm() {
				return nil
			}
			if oldErr == nil {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			copied++
			return copyFile(path, target, info)
		}
		return nil
	})
	if err != nil {
		return copied, err
	}
	// Remove what src does not have, deepest first.
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
	return copied, nil
}

// copyFile copies src to dst with src's permissions and times.
func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Chmod(dst, info.Mode().Perm()); err != nil {
		return err
	}
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}
