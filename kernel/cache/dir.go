package cache

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// partialPrefix begins the name of a directory whose content is still
// being written, to be renamed into place when complete.
const partialPrefix = ".partial-"

// staleAfter is when a partial directory is taken to be left by a process
// that died.
const staleAfter = time.Hour

// NewPartial creates dir if need be and a partial directory in it,
// .partial-<name>-<random>, mode 0755, for work that is renamed into place
// when complete. Partial directories older than an hour (left by processes
// that died) are removed first.
func NewPartial(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(dir, partialPrefix+"*"))
	for _, p := range old {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) > staleAfter {
			os.RemoveAll(p)
		}
	}
	tmp, err := os.MkdirTemp(dir, partialPrefix+name+"-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

// Dirs returns the directories in dir, but partial ones; none when dir
// does not exist.
func Dirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), partialPrefix) {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// DiskUsage is the disk space the files under dir take.
func DiskUsage(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Lock takes the exclusive lock of dir, its file dir.lock, for as long as
// a process works in dir. When another process holds it, Lock calls
// waiting once and waits until that one is done or ctx ends. The returned
// func releases the lock.
func Lock(ctx context.Context, dir string, waiting func()) (func(), error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	unlock := func() { f.Close() }
	if tryLock(f) {
		return unlock, nil
	}
	if waiting != nil {
		waiting()
	}
	for {
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
		if tryLock(f) {
			return unlock, nil
		}
	}
}

func tryLock(f *os.File) bool {
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// RemoveUnlocked removes dir and its lock file unless a process holds the
// lock (see Lock); then it removes nothing and returns false.
func RemoveUnlocked(dir string) (bool, error) {
	f, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if !tryLock(f) {
		return false, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return false, err
	}
	return true, os.Remove(dir + ".lock")
}
