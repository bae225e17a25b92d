// Package fsutil is the one place scxcheck hashes and copies files: the
// kernel caches, kernel builds, bisect and reproduction bundles all use it,
// so that a hash written by one is read the same way by another.
//
// Hashes are hex SHA-256. A copy is never seen half-written: CopyFile
// writes a temporary file beside its destination and renames it, and
// WriteFileAtomic does the same for data in memory.
package fsutil

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Hash is a file's size and content hash, as cache manifests record them.
type Hash struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// HashFile returns the size and SHA-256 of the file at path.
func HashFile(path string) (Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return Hash{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Hash{}, err
	}
	return Hash{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// HashBytes returns the hex SHA-256 of data.
func HashBytes(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// HashString returns the hex SHA-256 of s.
func HashString(s string) string { return HashBytes([]byte(s)) }

// CopyFile replaces dst with a copy of the regular file src, with src's
// permission bits and modification time.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	err = writeAtomic(dst, fi.Mode().Perm(), false, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
	if err != nil {
		return err
	}
	return os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}

// CopyNew copies the file src to dst, which must not exist, with the
// permission bits perm (not masked by the umask) and the current time.
func CopyNew(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
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
	return os.Chmod(dst, perm)
}

// WriteFileAtomic replaces path with data: a reader sees the old content
// or the new, never part of it.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return writeAtomic(path, perm, true, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeAtomic writes path through a temporary file beside it, synced to
// disk first when sync is set, and renames that into place.
func writeAtomic(path string, perm fs.FileMode, sync bool, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
