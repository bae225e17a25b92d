package selftests

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/kernel/debian"
)

// The cache half of the fault matrix: a corrupted cache entry and a cache
// directory that runs out of space must give clear errors and never leave
// an entry that a later run would boot. They need a complete cached Debian
// kernel to copy (the default kernel, fetched by `scxcheck kernel fetch`).

// cachedEntry returns the cache directory and release of a complete cached
// Debian kernel: the one under test if it came from a cache, else the
// newest in the default cache. It skips the spec when there is none.
func cachedEntry() (cacheDir, release string) {
	GinkgoHelper()
	entry := filepath.Dir(h.Options().Kernel)
	if _, err := debian.Cached(filepath.Dir(filepath.Dir(entry)), filepath.Base(entry)); err == nil {
		return filepath.Dir(filepath.Dir(entry)), filepath.Base(entry)
	}
	dir, err := debian.DefaultCacheDir()
	if err == nil {
		if k, err := debian.Cached(dir, ""); err == nil {
			return dir, filepath.Base(filepath.Dir(k.Boot))
		}
	}
	Skip("no complete cached Debian kernel to copy (run 'scxcheck kernel fetch')")
	return "", ""
}

// copyEntry copies the cache entry of release from one cache directory to
// another.
func copyEntry(from, to, release string) {
	GinkgoHelper()
	src, dst := filepath.Join(from, "kernels", release), filepath.Join(to, "kernels", release)
	Expect(os.MkdirAll(dst, 0o755)).To(Succeed())
	ents, err := os.ReadDir(src)
	Expect(err).NotTo(HaveOccurred())
	for _, e := range ents {
		if e.Type().IsRegular() {
			Expect(copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))).To(Succeed())
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// unreachableMirror is a mirror URL nothing listens on.
const unreachableMirror = "http://127.0.0.1:9/debian"

// logTo returns a Fetcher log function collecting its lines.
func logTo(mu *sync.Mutex, lines *[]string) func(string, ...any) {
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		*lines = append(*lines, fmt.Sprintf(format, args...))
	}
}

var _ = Describe("scxcheck's verdict on its kernel cache", Label("fault"), func() {
	DescribeTable("refuses a corrupted cached kernel and never boots it",
		func(ctx SpecContext, corrupt func(entry string), detail string) {
			from, rel := cachedEntry()
			cache := GinkgoT().TempDir()
			copyEntry(from, cache, rel)
			entry := filepath.Join(cache, "kernels", rel)
			_, err := debian.Cached(cache, rel)
			Expect(err).NotTo(HaveOccurred(), "the copy is not a complete entry")
			corrupt(entry)

			began := time.Now()
			_, err = debian.Cached(cache, rel)
			Expect(err).To(MatchError(debian.ErrNotCached))
			Expect(err).To(MatchError(ContainSubstring("is incomplete or corrupted: " + detail)))
			// Without a release, as `scxcheck run` looks: no entry is offered.
			_, err = debian.Cached(cache, "")
			Expect(err).To(MatchError(debian.ErrNotCached))

			// A fetch removes the entry before trying the mirror, so that no
			// later run can pick it up, and fails clearly offline.
			var mu sync.Mutex
			var lines []string
			f := &debian.Fetcher{CacheDir: cache, Mirror: unreachableMirror, Version: rel, Log: logTo(&mu, &lines)}
			_, err = f.Fetch(ctx)
			took := time.Since(began)
			verdictTook("corrupted cache entry: "+CurrentSpecReport().LeafNodeText, took)
			Expect(err).To(MatchError(debian.ErrMirror))
			Expect(err).To(MatchError(ContainSubstring("cannot reach Debian mirror " + unreachableMirror)))
			mu.Lock()
			Expect(lines).To(ContainElement(ContainSubstring("is incomplete or corrupted; fetching again")))
			mu.Unlock()
			Expect(entry).NotTo(BeAnExistingFile())
			Expect(took).To(BeNumerically("<", 30*time.Second))
		},
		Entry("truncated vmlinux", SpecTimeout(2*time.Minute), func(entry string) {
			fi, err := os.Stat(filepath.Join(entry, "vmlinux"))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.Truncate(filepath.Join(entry, "vmlinux"), fi.Size()/2)).To(Succeed())
		}, "vmlinux has "),
		Entry("one byte of vmlinux changed", SpecTimeout(2*time.Minute), func(entry string) {
			f, err := os.OpenFile(filepath.Join(entry, "vmlinux"), os.O_RDWR, 0)
			Expect(err).NotTo(HaveOccurred())
			defer f.Close()
			fi, _ := f.Stat()
			b := make([]byte, 1)
			_, err = f.ReadAt(b, fi.Size()/2)
			Expect(err).NotTo(HaveOccurred())
			b[0] ^= 0xff
			_, err = f.WriteAt(b, fi.Size()/2)
			Expect(err).NotTo(HaveOccurred())
		}, "vmlinux does not match its SHA-256"),
		Entry("no manifest (a fetch that died before finishing)", SpecTimeout(2*time.Minute), func(entry string) {
			Expect(os.Remove(filepath.Join(entry, "scxcheck-kernel.json"))).To(Succeed())
		}, "no scxcheck-kernel.json"),
	)

	It("fails a fetch into a full cache directory clearly and leaves no entry behind", Label("slow"), func(ctx SpecContext) {
		if os.Geteuid() != 0 {
			Skip("mounting a small tmpfs as the cache directory needs root")
		}
		from, rel := cachedEntry()
		cache := GinkgoT().TempDir()
		// Room for apt's package lists and the download, not for the
		// 62 MB vmlinux extracted from the package.
		aptDir := filepath.Join(from, "apt")
		size := dirSize(aptDir) + 50<<20
		Expect(unix.Mount("tmpfs", cache, "tmpfs", 0, fmt.Sprintf("size=%d", size))).To(Succeed())
		DeferCleanup(func() { _ = unix.Unmount(cache, unix.MNT_DETACH) })
		if _, err := os.Stat(aptDir); err == nil {
			// Reuse the package lists: apt then only checks they are current.
			out, err := exec.Command("cp", "-a", aptDir, filepath.Join(cache, "apt")).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
		}

		var mu sync.Mutex
		var lines []string
		f := &debian.Fetcher{CacheDir: cache, Version: rel, Log: logTo(&mu, &lines)}
		began := time.Now()
		_, err := f.Fetch(ctx)
		took := time.Since(began)
		if errors.Is(err, debian.ErrMirror) && !strings.Contains(err.Error(), "no space left") {
			Skip("the Debian mirror cannot be used: " + err.Error())
		}
		verdictTook("cache directory full", took)
		Expect(err).To(MatchError(ContainSubstring("no space left on device")))
		Expect(err).To(MatchError(ContainSubstring("fetch kernel " + rel)))
		// No entry, complete or partial, is left for a later run.
		left, _ := filepath.Glob(filepath.Join(cache, "kernels", "*"))
		Expect(left).To(BeEmpty())
		_, err = debian.Cached(cache, rel)
		Expect(err).To(MatchError(debian.ErrNotCached))

		// With room again, the same cache directory works.
		Expect(unix.Mount("tmpfs", cache, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=%d", size+200<<20))).To(Succeed())
		img, err := f.Fetch(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(img.Boot).To(BeAnExistingFile())
		_, err = debian.Cached(cache, rel)
		Expect(err).NotTo(HaveOccurred())
	}, SpecTimeout(10*time.Minute))
})

// dirSize is the total size of the regular files below dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
