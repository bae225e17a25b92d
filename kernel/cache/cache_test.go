package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/kernel/cache/cachetest"
	"golang.org/x/sys/unix"
)

// meta stands for an owner's manifest fields.
type meta struct {
	Release string    `json:"release"`
	Fetched time.Time `json:"fetched"`
}

func testStore(dir string) Store {
	return Store{Dir: filepath.Join(dir, "kernels"), Manifest: "m.json", Required: []string{"vmlinux", "config"}, Unlisted: []string{"build.log"}}
}

// files are the content of a test entry.
var files = map[string]string{
	"vmlinux":   strings.Repeat("kernel image ", 1000),
	"config":    "CONFIG_SCHED_CLASS_EXT=y\n",
	"build.log": "make\n",
}

// commit writes an entry name with files into s.
func commit(t *testing.T, s Store, name string) string {
	t.Helper()
	st, err := s.Stage(name)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Discard()
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(st.Dir, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := st.Commit(meta{Release: name, Fetched: time.Unix(1e9, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// noPartials fails the test when a staged directory was left in s.
func noPartials(t *testing.T, s Store) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(s.Dir, partialPrefix+"*")); len(left) > 0 {
		t.Errorf("left behind %q", left)
	}
}

func TestCommitThenOpen(t *testing.T) {
	s := testStore(t.TempDir())
	dir := commit(t, s, "7.2.13")
	if dir != filepath.Join(s.Dir, "7.2.13") {
		t.Errorf("entry in %s", dir)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("entry directory: %v, %v; want mode 0755", fi.Mode(), err)
	}
	var m meta
	got, err := s.Open("7.2.13", &m)
	if err != nil || got != dir {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if m.Release != "7.2.13" || !m.Fetched.Equal(time.Unix(1e9, 0)) {
		t.Errorf("manifest fields %+v", m)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "m.json"))
	for _, want := range []string{`"release": "7.2.13"`, `"vmlinux": {`, `"size": 13000`, `"sha256": "`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("manifest lacks %s:\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "build.log") {
		t.Errorf("manifest lists the unlisted build.log:\n%s", data)
	}
	if names, err := s.List(); err != nil || !slices.Equal(names, []string{"7.2.13"}) {
		t.Errorf("List = %q, %v", names, err)
	}
	noPartials(t, s)

	past := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "m.json"), past, past)
	if used := s.Used("7.2.13"); used.After(past.Add(time.Second)) {
		t.Errorf("Used = %v, want %v", used, past)
	}
	s.Touch("7.2.13")
	if used := s.Used("7.2.13"); time.Since(used) > time.Minute {
		t.Errorf("Used after Touch = %v", used)
	}
	if err := s.Remove("7.2.13"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("7.2.13", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of a removed entry = %v, want ErrNotFound", err)
	}
}

// The cache faults: an entry that was truncated, changed or never completed
// is detected before anything uses it, and says what is wrong.
func TestOpenDetectsDamagedEntries(t *testing.T) {
	faults := append(cachetest.Faults("m.json", "vmlinux"), cachetest.Fault{
		Name: "a required file not listed",
		Apply: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "m.json"), []byte(`{"files": {}}`), 0o644)
		},
		Detail: "m.json lists no vmlinux",
	})
	for _, f := range faults {
		t.Run(f.Name, func(t *testing.T) {
			s := testStore(t.TempDir())
			dir := commit(t, s, "7.2.13")
			if err := f.Apply(dir); err != nil {
				t.Fatal(err)
			}
			_, err := s.Open("7.2.13", nil)
			var ce *Error
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Open = %v, want a *Error wrapping ErrCorrupt", err)
			}
			if ce.Dir != dir || !strings.Contains(ce.Detail, f.Detail) {
				t.Errorf("Open = %+v, want the entry and %q", ce, f.Detail)
			}
			if want := "cache entry " + dir + " is incomplete or corrupted: "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
	// The size is checked before the content.
	s := testStore(t.TempDir())
	os.Truncate(filepath.Join(commit(t, s, "e"), "vmlinux"), 6500)
	if _, err := s.Open("e", nil); err == nil || !strings.HasSuffix(err.Error(), "vmlinux has 6500 bytes, m.json says 13000") {
		t.Errorf("Open of a truncated entry = %v", err)
	}
}

func TestOpenAbsent(t *testing.T) {
	s := testStore(t.TempDir())
	_, err := s.Open("7.2.13", nil)
	var ce *Error
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Dir != s.Path("7.2.13") {
		t.Errorf("Open of no entry = %v, want ErrNotFound", err)
	}
	if names, err := s.List(); len(names) != 0 || err != nil {
		t.Errorf("List of no store = %q, %v", names, err)
	}
}

// Entries kernel/build wrote before this package listed each file's
// SHA-256 only: they still open, and a changed file is still found.
func TestOpenLegacyManifest(t *testing.T) {
	s := testStore(t.TempDir())
	dir := filepath.Join(s.Dir, "7.2.0-0123456789abcdef")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("abc"), 0o644)
	os.WriteFile(filepath.Join(dir, "config"), []byte(""), 0o644)
	os.WriteFile(filepath.Join(dir, "m.json"), []byte(`{"key": "k", "files": {
		"vmlinux": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"config": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}`), 0o644)
	var m struct{ Key string }
	if _, err := s.Open("7.2.0-0123456789abcdef", &m); err != nil || m.Key != "k" {
		t.Fatalf("Open of an old entry = %v (key %q)", err, m.Key)
	}
	os.WriteFile(filepath.Join(dir, "vmlinux"), []byte("abd"), 0o644)
	if _, err := s.Open("7.2.0-0123456789abcdef", nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open of a changed old entry = %v, want ErrCorrupt", err)
	}
}

// Commit keeps an entry another process completed meanwhile, replaces a
// corrupt one, and with Replace any.
func TestCommitOverAnEntry(t *testing.T) {
	s := testStore(t.TempDir())
	dir := commit(t, s, "e")
	marker := filepath.Join(dir, "from-the-first")
	os.WriteFile(marker, nil, 0o644) // not in the manifest: Open does not mind
	commit(t, s, "e")
	if _, err := os.Stat(marker); err != nil {
		t.Error("a second Commit replaced a complete entry")
	}
	noPartials(t, s)

	os.Remove(filepath.Join(dir, "m.json"))
	commit(t, s, "e")
	if _, err := os.Stat(marker); err == nil {
		t.Error("Commit kept a corrupt entry")
	}
	if _, err := s.Open("e", nil); err != nil {
		t.Error(err)
	}

	os.WriteFile(marker, nil, 0o644)
	s.Replace = true
	commit(t, s, "e")
	if _, err := os.Stat(marker); err == nil {
		t.Error("Commit with Replace kept the entry")
	}
	noPartials(t, s)
}

// A disk that fills up while an entry is written: the error says so, and
// no entry, complete or partial, is left for a later run.
func TestFullDiskWhileWritingTheManifest(t *testing.T) {
	s := testStore(t.TempDir())
	writeFile = func(string, []byte, os.FileMode) error {
		return &os.PathError{Op: "write", Path: "m.json", Err: syscall.ENOSPC}
	}
	t.Cleanup(func() { writeFile = os.WriteFile })
	st, err := s.Stage("e")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(st.Dir, "vmlinux"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(st.Dir, "config"), []byte("x"), 0o644)
	_, err = st.Commit(meta{})
	st.Discard()
	if err == nil || !strings.Contains(err.Error(), "write cache manifest: write m.json: no space left on device") {
		t.Fatalf("Commit on a full disk = %v", err)
	}
	if _, err := s.Open("e", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after a failed Commit = %v, want ErrNotFound", err)
	}
	noPartials(t, s)

	writeFile = os.WriteFile // room again
	commit(t, s, "e")
	if _, err := s.Open("e", nil); err != nil {
		t.Error(err)
	}
}

// The same on a real full file system: a tmpfs too small for the entry.
func TestFullDiskWhileWritingAFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	s := testStore(mnt)
	st, err := s.Stage("e")
	if err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(st.Dir, "vmlinux"), make([]byte, 1<<20), 0o644)
	st.Discard()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 1 MiB into a 64 KiB tmpfs: %v, want ENOSPC", err)
	}
	if _, err := s.Open("e", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after a failed write = %v, want ErrNotFound", err)
	}
	noPartials(t, s)

	if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=4m"); err != nil {
		t.Fatal(err)
	}
	commit(t, s, "e")
	if _, err := s.Open("e", nil); err != nil {
		t.Error(err)
	}
}

func TestNewPartialRemovesStaleOnes(t *testing.T) {
	dir := t.TempDir()
	stale, fresh := filepath.Join(dir, ".partial-old-1"), filepath.Join(dir, ".partial-new-1")
	os.Mkdir(stale, 0o755)
	os.Mkdir(fresh, 0o755)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, past, past)
	p, err := NewPartial(dir, "x")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(p), ".partial-x-") {
		t.Errorf("partial directory %s", p)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("a partial directory of two hours ago was kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a partial directory in use was removed")
	}
	if dirs, _ := Dirs(dir); len(dirs) != 0 {
		t.Errorf("Dirs lists partial directories: %q", dirs)
	}
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "work")
	os.Mkdir(dir, 0o755)
	unlock, err := Lock(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := RemoveUnlocked(dir); removed || err != nil {
		t.Errorf("RemoveUnlocked of a locked directory = %v, %v", removed, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	waited := 0
	if _, err := Lock(ctx, dir, func() { waited++ }); !errors.Is(err, context.DeadlineExceeded) || waited != 1 {
		t.Errorf("second Lock = %v after %d waiting calls, want it to wait once until the deadline", err, waited)
	}
	done := make(chan error)
	go func() {
		u, err := Lock(context.Background(), dir, nil)
		if err == nil {
			u()
		}
		done <- err
	}()
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock did not get the lock once it was released")
	}
	if removed, err := RemoveUnlocked(dir); !removed || err != nil {
		t.Errorf("RemoveUnlocked = %v, %v", removed, err)
	}
	for _, p := range []string{dir, dir + ".lock"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s not removed", p)
		}
	}
}

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), make([]byte, 10000), 0o644)
	if n := DiskUsage(dir); n < 10000 {
		t.Errorf("DiskUsage = %d, want at least 10000", n)
	}
}
