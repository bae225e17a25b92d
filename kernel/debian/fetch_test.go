package debian

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/kernel/cache/cachetest"
	"golang.org/x/sys/unix"
)

// unreachable is a mirror nothing listens on.
const unreachable = "http://127.0.0.1:9/debian"

func needApt(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// logTo returns a Fetcher.Log that records lines and logs them.
func logTo(t *testing.T, lines *[]string) func(string, ...any) {
	return func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		*lines = append(*lines, s)
		t.Log(s)
	}
}

func TestFetchUnreachableMirror(t *testing.T) {
	needApt(t)
	cache := t.TempDir()
	start := time.Now()
	f := &Fetcher{CacheDir: cache, Mirror: unreachable, Log: t.Logf}
	img, err := f.Fetch(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Fetch = %+v, want an error", img)
	}
	t.Logf("error after %v: %v", took, err)
	if !errors.Is(err, ErrMirror) {
		t.Errorf("error does not wrap ErrMirror")
	}
	want := "fetch default kernel: cannot reach Debian mirror " + unreachable +
		" (apt-get update failed: Could not connect to 127.0.0.1:9"
	if !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "); check the network, pass --mirror URL, or use --kernel PATH with your own kernel") {
		t.Errorf("error %q\ndoes not start with %q and end with the advice", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans several lines")
	}
	if took > 5*time.Second {
		t.Errorf("took %v to fail", took)
	}
	if _, err := os.Stat(filepath.Join(cache, "apt", "sid", "sources.list")); err != nil {
		t.Errorf("no private sources list: %v", err)
	}
}

// A pinned version that is cached is returned without asking the mirror.
func TestFetchCached(t *testing.T) {
	cache := t.TempDir()
	dir := makeEntry(t, cache, rel)
	f := &Fetcher{CacheDir: cache, Mirror: unreachable, Version: "9.9.9+test"}
	img, err := f.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if img.Boot != filepath.Join(dir, "vmlinux") {
		t.Errorf("Fetch = %+v", img)
	}
}

// A corrupted entry is never used: Cached refuses it, saying why, and a
// fetch removes it before asking the mirror (here an unreachable one, so
// that the fetch fails clearly).
func TestCorruptEntryIsRefusedAndFetchedAgain(t *testing.T) {
	for _, fault := range cachetest.Faults(manifestName, "vmlinux") {
		t.Run(fault.Name, func(t *testing.T) {
			cache := t.TempDir()
			dir := makeEntry(t, cache, rel)
			if err := setDefault(cache, rel); err != nil {
				t.Fatal(err)
			}
			if err := fault.Apply(dir); err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{rel, ""} { // "": as a default run looks
				_, err := Cached(cache, r)
				if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), dir+" is incomplete or corrupted: ") ||
					!strings.Contains(err.Error(), fault.Detail) {
					t.Errorf("Cached(%q) = %v, want ErrNotCached saying %q", r, err, fault.Detail)
				}
			}

			needApt(t)
			var lines []string
			f := &Fetcher{CacheDir: cache, Mirror: unreachable, Version: rel, Log: logTo(t, &lines)}
			start := time.Now()
			_, err := f.Fetch(context.Background())
			if !errors.Is(err, ErrMirror) || !strings.HasPrefix(err.Error(), "fetch kernel "+rel+": cannot reach Debian mirror "+unreachable) {
				t.Errorf("Fetch error = %v, want ErrMirror", err)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v to fail", took)
			}
			if log := strings.Join(lines, "\n"); !strings.Contains(log, "cache entry "+dir+" is incomplete or corrupted; fetching again (") ||
				!strings.Contains(log, fault.Detail) {
				t.Errorf("log does not say the entry is corrupted: %q", lines)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupted entry still there: %v", err)
			}
		})
	}
}

// TestFetchIntoFullCache fetches a kernel into a cache directory too small
// for it, then, with room again, into the same one. It needs root (for a
// tmpfs) and runs only with SCXCHECK_NETWORK_TESTS=1.
func TestFetchIntoFullCache(t *testing.T) {
	if os.Getenv("SCXCHECK_NETWORK_TESTS") != "1" {
		t.Skip("set SCXCHECK_NETWORK_TESTS=1 to fetch a kernel from Debian")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs as the cache directory needs root")
	}
	needApt(t)
	cache := t.TempDir()
	if err := unix.Mount("tmpfs", cache, "tmpfs", 0, "size=1g"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(cache, unix.MNT_DETACH) })
	// Room for apt's package lists (fetched first) and the download, not
	// for the 62 MB vmlinux extracted from the package.
	if _, err := (&Fetcher{CacheDir: cache, Log: t.Logf}).List(t.Context()); err != nil {
		t.Skipf("the Debian mirror cannot be used: %v", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cache, &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Blocks-st.Bfree)*st.Bsize + 50<<20
	if err := unix.Mount("tmpfs", cache, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatal(err)
	}
	var lines []string
	f := &Fetcher{CacheDir: cache, Log: logTo(t, &lines)}
	_, err := f.Fetch(t.Context())
	if errors.Is(err, ErrMirror) && !strings.Contains(err.Error(), "no space left") {
		t.Skipf("the Debian mirror cannot be used: %v", err)
	}
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.HasPrefix(err.Error(), "fetch default kernel") {
		t.Fatalf("Fetch into a full cache = %v, want it to say the device is full", err)
	}
	// No entry, complete or partial, is left for a later run.
	if left, _ := filepath.Glob(filepath.Join(cache, "kernels", "*")); len(left) > 0 {
		t.Errorf("left behind %q", left)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, "kernels", ".partial-*")); len(left) > 0 {
		t.Errorf("left behind %q", left)
	}
	if _, err := Cached(cache, ""); !errors.Is(err, ErrNotCached) {
		t.Errorf("Cached = %v, want ErrNotCached", err)
	}

	if err := unix.Mount("tmpfs", cache, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=%d", size+200<<20)); err != nil {
		t.Fatal(err)
	}
	img, err := f.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if cached, err := Cached(cache, img.Release); err != nil || *cached != *img {
		t.Errorf("Cached = %+v, %v; want %+v", cached, err, img)
	}
}

func TestFetchBadVersion(t *testing.T) {
	f := &Fetcher{CacheDir: t.TempDir(), Mirror: unreachable, Version: "latest"}
	_, err := f.Fetch(context.Background())
	if !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("Fetch(latest) = %v, want ErrUnknownVersion", err)
	}
}

func TestAptFailed(t *testing.T) {
	for _, tc := range []struct {
		name           string
		stdout, stderr string
		err            error
		kind           failureKind
		line           string
	}{
		{"unreachable",
			"Err:1 http://127.0.0.1:9/debian sid InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n",
			"W: Failed to fetch http://127.0.0.1:9/debian/dists/sid/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n" +
				"W: Some index files failed to download. They have been ignored, or old ones used instead.\n",
			nil, failNetwork, "Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"},
		{"no such suite",
			"Ign:1 http://deb.debian.org/debian nosuchsuite InRelease\nErr:2 http://deb.debian.org/debian nosuchsuite Release\n  404  Not Found [IP: 203.0.113.80 80]\nReading package lists...\n",
			"E: The repository 'http://deb.debian.org/debian nosuchsuite Release' does not have a Release file.\n",
			errors.New("exit status 100"), failNotFound, "The repository 'http://deb.debian.org/debian nosuchsuite Release' does not have a Release file."},
		{"unsigned",
			"Get:1 http://deb.debian.org/debian sid InRelease [193 kB]\nErr:1 http://deb.debian.org/debian sid InRelease\n  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 1234\n",
			"W: GPG error: http://deb.debian.org/debian sid InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 1234\n" +
				"E: The repository 'http://deb.debian.org/debian sid InRelease' is not signed.\n",
			errors.New("exit status 100"), failSignature, "The repository 'http://deb.debian.org/debian sid InRelease' is not signed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := aptFailed("apt-get update", tc.stdout, tc.stderr, tc.err)
			if f == nil || f.kind != tc.kind || f.line != tc.line {
				t.Errorf("aptFailed = %+v, want kind %d line %q", f, tc.kind, tc.line)
			}
		})
	}
	if f := aptFailed("apt-get update", "Get:1 http://deb.debian.org/debian sid InRelease [193 kB]\n", "W: Target Packages is configured multiple times\n", nil); f != nil {
		t.Errorf("aptFailed(success with a warning) = %v", f)
	}
}

// TestFetchReal fetches Debian's current cloud kernel from the network. It
// runs only with SCXCHECK_NETWORK_TESTS=1.
func TestFetchReal(t *testing.T) {
	if os.Getenv("SCXCHECK_NETWORK_TESTS") != "1" {
		t.Skip("set SCXCHECK_NETWORK_TESTS=1 to fetch a kernel from Debian")
	}
	needApt(t)
	cache := t.TempDir()
	start := time.Now()
	f := &Fetcher{CacheDir: cache, Log: t.Logf}
	img, err := f.Fetch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched %+v in %v", img, time.Since(start))
	if img.Boot != img.Vmlinux || img.BzImage == "" || img.Config == "" || !strings.HasSuffix(img.Release, "-cloud-amd64") {
		t.Errorf("Fetch = %+v", img)
	}
	if err := img.CheckConfig(); err != nil {
		t.Error(err)
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "kernels", ".*")); len(entries) > 0 {
		t.Errorf("left behind %q", entries)
	}

	start = time.Now()
	cached, err := Cached(cache, "")
	if err != nil || *cached != *img {
		t.Errorf("Cached = %+v, %v; want %+v", cached, err, img)
	}
	t.Logf("Cached took %v", time.Since(start))

	start = time.Now()
	pinned := &Fetcher{CacheDir: cache, Mirror: unreachable, Version: img.Release}
	again, err := pinned.Fetch(t.Context())
	if err != nil || *again != *img {
		t.Errorf("pinned Fetch = %+v, %v; want the cached %+v", again, err, img)
	}
	t.Logf("pinned Fetch from the cache took %v", time.Since(start))

}
