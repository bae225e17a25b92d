package build

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// Tree is a kernel source tree.
type Tree struct {
	Dir     string // absolute
	Version string // from its Makefile, e.g. "7.2.13"
	// Origin says where scxcheck got it, e.g. "Debian linux-source-7.2
	// 7.2.13-1"; "" for a tree the user passed.
	Origin string
}

// OpenTree checks that dir is a kernel source tree scxcheck can build out
// of tree: a top Makefile with VERSION and PATCHLEVEL, Kconfig, arch/x86, and
// not configured in place. Its errors wrap ErrNotTree.
func OpenTree(dir string) (*Tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	notTree := func(format string, args ...any) error {
		return &wrapError{fmt.Sprintf("%s is not a kernel source tree: ", dir) + fmt.Sprintf(format, args...), []error{ErrNotTree}}
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, notTree("no such directory")
	case err != nil:
		return nil, &wrapError{fmt.Sprintf("open kernel tree %s: %v", dir, err), []error{ErrNotTree}}
	case !fi.IsDir():
		return nil, notTree("not a directory")
	}
	version, err := makefileVersion(filepath.Join(abs, "Makefile"))
	if err != nil {
		return nil, notTree("%v", err)
	}
	for _, p := range []string{"Kconfig", "arch/x86/Kconfig", "scripts/kconfig"} {
		if _, err := os.Stat(filepath.Join(abs, p)); err != nil {
			return nil, notTree("no %s", p)
		}
	}
	for _, p := range []string{".config", "include/config"} {
		if _, err := os.Stat(filepath.Join(abs, p)); err == nil {
			return nil, &wrapError{fmt.Sprintf("kernel tree %s is configured in place (it has %s); scxcheck builds out of tree "+
				"and the kernel's make refuses that then: run 'make mrproper' in it, or pass a clean tree", dir, p), []error{ErrNotTree}}
		}
	}
	return &Tree{Dir: abs, Version: version}, nil
}

// makefileVersion reads VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION from
// the head of a kernel's top Makefile.
func makefileVersion(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errors.New("no Makefile")
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	vars := map[string]string{}
	s := bufio.NewScanner(io.LimitReader(f, 4096))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if !ok {
			continue
		}
		vars[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if vars["VERSION"] == "" || vars["PATCHLEVEL"] == "" {
		return "", errors.New("its Makefile does not start with VERSION = and PATCHLEVEL = lines")
	}
	v := vars["VERSION"] + "." + vars["PATCHLEVEL"]
	if vars["SUBLEVEL"] != "" {
		v += "." + vars["SUBLEVEL"]
	}
	return v + vars["EXTRAVERSION"], nil
}

// Key identifies the tree's content: "git:<commit>" for a clean git
// checkout, "git:<commit>+<hash>" for a dirty one (the diff and the untracked
// files hashed), else "content:<hash>" of every file. indexDir keeps a
// per-tree index of file hashes by size and modification time so that
// hashing a tree again reads only what changed.
func (t *Tree) Key(ctx context.Context, r Runner, indexDir string) (string, error) {
	if _, err := os.Stat(filepath.Join(t.Dir, ".git")); err == nil {
		if k, err := gitKey(ctx, r, t.Dir); err == nil {
			return k, nil
		}
	}
	sum, err := contentHash(ctx, t.Dir, filepath.Join(indexDir, fsutil.HashString(t.Dir)[:16]+".index"))
	if err != nil {
		return "", fmt.Errorf("hash kernel tree %s: %w", t.Dir, err)
	}
	return "content:" + sum, nil
}

// gitKey is the key of a git checkout.
func gitKey(ctx context.Context, r Runner, dir string) (string, error) {
	head, err := output(ctx, r, dir, "git", "rev-parse", "HEAD")
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(head)
	status, err := output(ctx, r, dir, "git", "status", "--porcelain", "-z", "--untracked-files=all")
	if err != nil {
		return "", err
	}
	if status == "" {
		return "git:" + commit, nil
	}
	h := sha256.New()
	diff, err := output(ctx, r, dir, "git", "diff", "HEAD", "--binary")
	if err != nil {
		return "", err
	}
	io.WriteString(h, diff)
	for _, entry := range strings.Split(status, "\x00") {
		if p, ok := strings.CutPrefix(entry, "?? "); ok {
			fh, err := fsutil.HashFile(filepath.Join(dir, p))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "\x00%s\x00%s", p, fh.SHA256)
		}
	}
	return "git:" + commit + "+" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// indexEntry is what the content index remembers of a file.
type indexEntry struct {
	Size  int64
	MTime int64 // ns
	Hash  string
}

// contentHash hashes every file under dir (but .git) with its path and
// executable bit, reusing the hashes in the index at indexPath for files
// whose size and modification time did not change.
func contentHash(ctx context.Context, dir, indexPath string) (string, error) {
	index := map[string]indexEntry{}
	var indexTime time.Time
	if f, err := os.Open(indexPath); err == nil {
		if fi, err := f.Stat(); err == nil {
			indexTime = fi.ModTime()
		}
		if gob.NewDecoder(f).Decode(&index) != nil {
			index = map[string]indexEntry{}
		}
		f.Close()
	}

	type item struct {
		rel  string
		kind byte // f file, x executable, l symlink
		size int64
		mt   int64
		hash string
	}
	var items []*item
	var todo []*item
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" && path != dir {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		it := &item{rel: rel, size: info.Size(), mt: info.ModTime().UnixNano()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			it.kind = 'l'
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			it.hash = target
		case info.Mode().IsRegular():
			it.kind = 'f'
			if info.Mode()&0o111 != 0 {
				it.kind = 'x'
			}
			// An entry written less than a second after the file was
			// last modified may predate a change in the same tick.
			e, ok := index[rel]
			if ok && e.Size == it.size && e.MTime == it.mt && indexTime.Sub(info.ModTime()) > time.Second {
				it.hash = e.Hash
			} else {
				todo = append(todo, it)
			}
		default:
			return nil
		}
		items = append(items, it)
		return nil
	})
	if err != nil {
		return "", err
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan *item)
	for range max(1, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				h, err := fsutil.HashFile(filepath.Join(dir, it.rel))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				it.hash = h.SHA256
				mu.Unlock()
			}
		}()
	}
	for _, it := range todo {
		if ctx.Err() != nil {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if firstErr != nil {
		return "", firstErr
	}

	h := sha256.New()
	newIndex := make(map[string]indexEntry, len(items))
	for _, it := range items {
		fmt.Fprintf(h, "%c %s\x00%s\n", it.kind, it.rel, it.hash)
		if it.kind != 'l' {
			newIndex[it.rel] = indexEntry{Size: it.size, MTime: it.mt, Hash: it.hash}
		}
	}
	if len(todo) > 0 {
		_ = writeGob(indexPath, newIndex) // only an optimisation
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
