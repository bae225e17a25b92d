// Package cache keeps verified cache entries for scxcheck's two kernel
// caches: the Debian kernels kernel/debian fetches ($CACHE/kernels/<release>/)
// and the kernels kernel/build builds ($CACHE/build/kernels/<version>-<key>/).
//
// An entry is a directory of files and a manifest: a JSON file holding the
// owner's own fields and, under "files", every file's size and SHA-256. A
// Store stages an entry in a partial directory beside its place, writes the
// manifest last and renames the directory into place whole. Open checks
// every listed file against the manifest before the entry is used: an entry
// cut short, truncated or changed is an error wrapping ErrCorrupt, and its
// owner fetches or builds it again.
package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

var (
	// ErrNotFound is wrapped by errors of Open for an entry that does not exist.
	ErrNotFound = errors.New("no such cache entry")
	// ErrCorrupt is wrapped by errors of Open and ReadManifest for an entry
	// that exists but is incomplete or does not match its manifest.
	ErrCorrupt = errors.New("cache entry incomplete or corrupted")
)

// Error is an error of Open or ReadManifest.
type Error struct {
	Dir string // the entry
	// Detail says what is wrong with a corrupt entry, e.g. "vmlinux does
	// not match its SHA-256 in scxcheck-kernel.json".
	Detail string
	Err    error // ErrNotFound or ErrCorrupt
}

func (e *Error) Error() string {
	if e.Err == ErrNotFound {
		return "no cache entry " + e.Dir
	}
	return "cache entry " + e.Dir + " is incomplete or corrupted: " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Store is a directory of entries whose manifests have one name.
type Store struct {
	Dir      string   // holds the entries, a directory each
	Manifest string   // the manifest's file name, e.g. "scxcheck-kernel.json"
	Required []string // files every manifest must list
	// Unlisted are files an entry may hold that its manifest does not list
	// (a build log).
	Unlisted []string
	// Replace makes Commit replace an entry already in place. Without it
	// an entry that verifies is kept (another process completed the same
	// one) and only one that does not is replaced.
	Replace bool
}

// Path returns the directory of the entry name.
func (s Store) Path(name string) string { return filepath.Join(s.Dir, name) }

// Corrupt returns an error saying the entry name is corrupt, for checks an
// owner makes of its own manifest fields.
func (s Store) Corrupt(name, format string, args ...any) error {
	return &Error{Dir: s.Path(name), Detail: fmt.Sprintf(format, args...), Err: ErrCorrupt}
}

// fileSum is a manifest's record of a file. Manifests of kernel/build
// before this package gave only the SHA-256, as a string; their size is -1
// and not checked.
type fileSum fsutil.Hash

func (f *fileSum) UnmarshalJSON(data []byte) error {
	var sum string
	if json.Unmarshal(data, &sum) == nil {
		*f = fileSum{Size: -1, SHA256: sum}
		return nil
	}
	return json.Unmarshal(data, (*fsutil.Hash)(f))
}

// ReadManifest decodes the manifest of the entry name into meta (a pointer
// to the owner's fields) without checking the files it lists.
func (s Store) ReadManifest(name string, meta any) error {
	_, err := s.readManifest(name, meta)
	return err
}

func (s Store) readManifest(name string, meta any) (map[string]fileSum, error) {
	data, err := os.ReadFile(filepath.Join(s.Path(name), s.Manifest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, s.Corrupt(name, "no %s", s.Manifest)
	}
	if err != nil {
		return nil, s.Corrupt(name, "%v", err)
	}
	var files struct {
		Files map[string]fileSum `json:"files"`
	}
	if err := json.Unmarshal(data, &files); err != nil {
		return nil, s.Corrupt(name, "%s: %v", s.Manifest, err)
	}
	if meta != nil {
		if err := json.Unmarshal(data, meta); err != nil {
			return nil, s.Corrupt(name, "%s: %v", s.Manifest, err)
		}
	}
	return files.Files, nil
}

// Open verifies the entry name: its manifest lists every Required file, and
// every file it lists has the size and SHA-256 it gives (about 0.1 s for a
// 76 MB entry). It decodes the manifest into meta (nil: not at all) and
// returns the entry's directory. Errors are *Error.
func (s Store) Open(name string, meta any) (string, error) {
	dir := s.Path(name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return "", &Error{Dir: dir, Err: ErrNotFound}
	}
	files, err := s.readManifest(name, meta)
	if err != nil {
		return "", err
	}
	for _, f := range s.Required {
		if _, ok := files[f]; !ok {
			return "", s.Corrupt(name, "%s lists no %s", s.Manifest, f)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		want := files[f]
		got, err := fsutil.HashFile(filepath.Join(dir, f))
		if err != nil {
			return "", s.Corrupt(name, "%v", err)
		}
		if want.Size >= 0 && got.Size != want.Size {
			return "", s.Corrupt(name, "%s has %d bytes, %s says %d", f, got.Size, s.Manifest, want.Size)
		}
		if got.SHA256 != want.SHA256 {
			return "", s.Corrupt(name, "%s does not match its SHA-256 in %s", f, s.Manifest)
		}
	}
	return dir, nil
}

// Touch records that the entry name was used now (see Used).
func (s Store) Touch(name string) {
	now := time.Now()
	os.Chtimes(filepath.Join(s.Path(name), s.Manifest), now, now)
}

// Used returns when the entry name was completed or last touched.
func (s Store) Used(name string) time.Time {
	fi, err := os.Stat(filepath.Join(s.Path(name), s.Manifest))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// List returns the names of the entries, complete or not, but not those
// being staged.
func (s Store) List() ([]string, error) {
	dirs, err := Dirs(s.Dir)
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(d))
	}
	return names, err
}

// Remove removes the entry name.
func (s Store) Remove(name string) error { return os.RemoveAll(s.Path(name)) }

// Staged is an entry being written: files go into Dir, then Commit.
type Staged struct {
	Dir   string
	store Store
	name  string
	done  bool
}

// Stage starts writing the entry name in a partial directory (see
// NewPartial).
func (s Store) Stage(name string) (*Staged, error) {
	dir, err := NewPartial(s.Dir, name)
	if err != nil {
		return nil, err
	}
	return &Staged{Dir: dir, store: s, name: name}, nil
}

// Commit writes the manifest, meta's fields and the size and SHA-256 of
// every regular file in the staged directory and its subdirectories (by
// slash-separated path) but the Unlisted, and renames
// the directory into place. It returns the entry's directory.
func (st *Staged) Commit(meta any) (string, error) {
	s := st.store
	if err := s.writeManifest(st.Dir, meta); err != nil {
		return "", fmt.Errorf("write cache manifest: %w", err)
	}
	entry := s.Path(st.name)
	if s.Replace {
		os.RemoveAll(entry)
	} else if _, err := s.Open(st.name, nil); errors.Is(err, ErrCorrupt) {
		os.RemoveAll(entry)
	}
	if err := os.Rename(st.Dir, entry); err != nil {
		// Another process may have completed the same entry meanwhile.
		if _, oerr := s.Open(st.name, nil); oerr == nil {
			return entry, nil
		}
		return "", fmt.Errorf("complete cache entry: %w", err)
	}
	st.done = true
	return entry, nil
}

// Discard removes the staged directory unless it was committed.
func (st *Staged) Discard() {
	if !st.done {
		os.RemoveAll(st.Dir)
	}
}

func (s Store) writeManifest(dir string, meta any) error {
	files := map[string]fsutil.Hash{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == s.Manifest || slices.Contains(s.Unlisted, rel) {
			return err
		}
		h, err := fsutil.HashFile(p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = h
		return nil
	})
	if err != nil {
		return err
	}
	fields := map[string]json.RawMessage{}
	if meta != nil {
		data, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &fields); err != nil {
			return fmt.Errorf("manifest fields: %w", err)
		}
	}
	if fields["files"], err = json.Marshal(files); err != nil {
		return err
	}
	data, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, s.Manifest), append(data, '\n'), 0o644)
}

// writeFile writes the manifest; tests make it fail as a full disk would.
var writeFile = os.WriteFile
