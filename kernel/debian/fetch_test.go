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

// An incomplete entry is removed and fetched again.
func TestFetchReplacesCorrupt(t *testing.T) {
	needApt(t)
	cache := t.TempDir()
	dir := makeEntry(t, cache, rel)
	os.Truncate(filepath.Join(dir, "vmlinuz"), 100)
	var lines []string
	f := &Fetcher{CacheDir: cache, Mirror: unreachable, Version: rel, Log: logTo(t, &lines)}
	_, err := f.Fetch(context.Background())
	if !errors.Is(err, ErrMirror) || !strings.HasPrefix(err.Error(), "fetch kernel "+rel+": cannot reach Debian mirror") {
		t.Errorf("Fetch error = %v, want ErrMirror", err)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "cache entry "+dir+" is incomplete or corrupted; fetching again") {
		t.Errorf("log does not say the entry is corrupted: %q", lines)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("corrupted entry still there: %v", err)
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
