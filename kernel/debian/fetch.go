package debian

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/kernel"
)

// ErrMirror is wrapped by errors saying the Debian mirror could not be used:
// unreachable, failing, or without the suites and packages expected.
var ErrMirror = errors.New("cannot use Debian mirror")

// suites are searched in order for a kernel: unstable first, then
// trixie-backports, which also carries kernels with sub-schedulers.
var suites = []string{"sid", "trixie-backports"}

// Fetcher fetches Debian's cloud-amd64 kernel into a cache.
type Fetcher struct {
	// CacheDir holds kernels in kernels/<release>/ and apt's private
	// state in apt/. "" = DefaultCacheDir().
	CacheDir string
	// Mirror is the Debian archive, e.g. http://deb.debian.org/debian.
	// "" = MirrorFromSystem(), else DefaultMirror.
	Mirror string
	// Version pins a kernel release, e.g. "7.2.13+deb14-cloud-amd64" or
	// "7.2.13+deb14". "" = the default kernel (see Fetch).
	Version string
	// Latest, without a Version, resolves the default kernel through
	// Debian's linux-image-cloud-amd64 metapackage again and remembers the
	// result as the new default.
	Latest bool
	// Log receives progress lines. nil = silent.
	Log func(format string, args ...any)
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Log != nil {
		f.Log(format, args...)
	}
}

// Fetch returns the kernel f describes, from the cache when a complete
// entry is there, else resolved, downloaded and unpacked with apt, its
// vmlinux extracted and its config checked against kernel.RequiredSymbols.
//
// Without a Version it fetches the default kernel: the release remembered
// in the cache (DefaultRelease), or, the first time or with Latest, the one
// Debian's metapackage resolves to now, which is then remembered. Fetching a
// Version never changes the default. An entry found incomplete or corrupted
// is removed and fetched again.
func (f *Fetcher) Fetch(ctx context.Context) (*kernel.Image, error) {
	op := "fetch default kernel"
	var rel string
	remembered := false
	if f.Version == "" && !f.Latest {
		cacheDir, err := f.cacheDir()
		if err != nil {
			return nil, err
		}
		if r, err := DefaultRelease(cacheDir); err == nil {
			rel, remembered = r, true
			op = "fetch default kernel " + rel
		}
	}
	if f.Version != "" {
		r, err := normalizeRelease(f.Version)
		if err != nil {
			return nil, fmt.Errorf("fetch kernel: %w", err)
		}
		rel = r
		op = "fetch kernel " + rel
	}
	img, err := f.fetch(ctx, rel)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if remembered && errors.Is(err, ErrUnknownVersion) {
			// Not bad input: the default was valid when it was chosen.
			return nil, &wrapError{fmt.Sprintf("%s: %v (the mirror no longer has the remembered default; 'scxcheck kernel fetch --latest' moves the default to the current release)", op, err), []error{ErrMirror}}
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if f.Version == "" && !remembered {
		cacheDir, _ := f.cacheDir()
		old, _ := DefaultRelease(cacheDir)
		if err := setDefault(cacheDir, img.Release); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if old != img.Release {
			if old != "" {
				f.logf("default kernel is now %s (was %s)", img.Release, old)
			} else {
				f.logf("default kernel is %s (remembered in %s)", img.Release, filepath.Join(cacheDir, "kernels", defaultName))
			}
		}
	}
	return img, nil
}

func (f *Fetcher) cacheDir() (string, error) {
	if f.CacheDir != "" {
		return f.CacheDir, nil
	}
	return DefaultCacheDir()
}

func (f *Fetcher) fetch(ctx context.Context, rel string) (*kernel.Image, error) {
	cacheDir, err := f.cacheDir()
	if err != nil {
		return nil, err
	}
	if rel != "" {
		if img := f.fromCache(cacheDir, rel); img != nil {
			return img, nil
		}
	}

	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found: fetching Debian's kernel needs apt-get, apt-cache and dpkg-deb "+
				"(a Debian-based host); use --kernel PATH with your own kernel", tool)
			return nil, &wrapError{msg, []error{exec.ErrNotFound}}
		}
	}
	mirror := strings.TrimRight(f.Mirror, "/")
	if mirror == "" {
		m, err := MirrorFromSystem()
		if err != nil {
			f.logf("%v; using %s", err, DefaultMirror)
			m = DefaultMirror
		}
		mirror = m
	}
	a := &apt{dir: filepath.Join(cacheDir, "apt"), mirror: mirror}

	c, err := f.resolve(ctx, a, rel)
	if err != nil {
		return nil, err
	}
	if rel == "" {
		if img := f.fromCache(cacheDir, c.release); img != nil {
			return img, nil
		}
	}
	return f.install(ctx, a, cacheDir, c)
}

// fromCache returns the complete cache entry of rel, or nil. It removes an
// entry that is incomplete or corrupted.
func (f *Fetcher) fromCache(cacheDir, rel string) *kernel.Image {
	img, err := Cached(cacheDir, rel)
	if err == nil {
		f.logf("using cached kernel %s", img.Boot)
		return img
	}
	var ce *cacheError
	if errors.As(err, &ce) && ce.corrupt {
		f.logf("cache entry %s is incomplete or corrupted; fetching again (%s)", ce.dir, ce.detail)
		os.RemoveAll(ce.dir)
	}
	return nil
}

// candidate is a kernel found in a suite.
type candidate struct {
	release string
	suite   string
	version string // Debian package version
	pkgs    []pkg  // what to download
}

// resolve finds which packages make up the kernel of rel ("" = current).
func (f *Fetcher) resolve(ctx context.Context, a *apt, rel string) (*candidate, error) {
	var updated []string
	var lastFailure *aptFailure
	for _, suite := range suites {
		f.logf("updating package lists of Debian %s from %s", suite, a.mirror)
		if err := a.update(ctx, suite); err != nil {
			var af *aptFailure
			if !errors.As(err, &af) {
				return nil, fmt.Errorf("set up apt in %s: %w", a.dir, err)
			}
			if af.kind == failNotFound {
				f.logf("no Debian %s at %s (%s)", suite, a.mirror, af.line)
				lastFailure = af
				continue
			}
			return nil, mirrorError(a.mirror, af)
		}
		updated = append(updated, suite)

		r := rel
		if r == "" {
			f.logf("resolving linux-image-%s in %s...", flavour, suite)
			var err error
			if r, err = a.resolveMeta(ctx, suite); err != nil {
				return nil, err
			}
			if r == "" {
				f.logf("no linux-image-%s in %s", flavour, suite)
				continue
			}
		}
		names := []string{"linux-image-" + r, "linux-binary-" + r, "linux-base-" + r}
		pkgs, err := a.show(ctx, suite, names...)
		if err != nil {
			return nil, err
		}
		image, ok := pkgs[names[0]]
		if !ok {
			f.logf("no linux-image-%s in %s", r, suite)
			continue
		}
		// Since Debian split its kernel packages, vmlinuz is in
		// linux-binary and config in linux-binary or linux-base; before,
		// both were in linux-image.
		c := &candidate{release: r, suite: suite, version: image.Version}
		for _, n := range names[1:] {
			if p, ok := pkgs[n]; ok {
				c.pkgs = append(c.pkgs, p)
			}
		}
		if len(c.pkgs) == 0 {
			c.pkgs = []pkg{image}
		}
		return c, nil
	}

	switch {
	case len(updated) == 0:
		return nil, &wrapError{fmt.Sprintf("Debian mirror %s has neither %s (%s); pass --mirror URL, or use --kernel PATH with your own kernel",
			a.mirror, strings.Join(suites, " nor "), lastFailure.line), []error{ErrMirror}}
	case rel != "":
		var avail []string
		for _, suite := range updated {
			rels, err := a.releases(ctx, suite)
			if err != nil {
				return nil, err
			}
			slices.SortFunc(rels, func(x, y string) int { return compareRelease(y, x) })
			const show = 8
			for i, r := range rels {
				if i == show {
					avail = append(avail, fmt.Sprintf("%d older in %s", len(rels)-show, suite))
					break
				}
				avail = append(avail, r+" ("+suite+")")
			}
		}
		list := "none"
		if len(avail) > 0 {
			list = strings.Join(avail, ", ")
		}
		return nil, fmt.Errorf("%w in %s at %s; available: %s",
			ErrUnknownVersion, strings.Join(updated, " or "), a.mirror, list)
	default:
		return nil, &wrapError{fmt.Sprintf("no linux-image-%s in Debian %s at %s; pass --mirror URL, or use --kernel PATH with your own kernel",
			flavour, strings.Join(updated, " or "), a.mirror), []error{ErrMirror}}
	}
}

// mirrorError turns a failed apt command into one line for the user.
func mirrorError(mirror string, af *aptFailure) error {
	var msg string
	switch af.kind {
	case failSignature:
		msg = fmt.Sprintf("cannot verify Debian mirror %s (%v); the machine's Debian archive keyring may be too old; "+
			"pass --mirror URL, or use --kernel PATH with your own kernel", mirror, af)
	case failNetwork, failNotFound:
		msg = fmt.Sprintf("cannot reach Debian mirror %s (%v); check the network, pass --mirror URL, "+
			"or use --kernel PATH with your own kernel", mirror, af)
	default:
		return af
	}
	return &wrapError{msg, []error{ErrMirror}}
}

// install downloads and unpacks c into a new cache entry and opens it.
func (f *Fetcher) install(ctx context.Context, a *apt, cacheDir string, c *candidate) (*kernel.Image, error) {
	store := kernels(cacheDir)
	staged, err := store.Stage(c.release)
	if err != nil {
		return nil, err
	}
	defer staged.Discard()
	tmp := staged.Dir

	dl := filepath.Join(tmp, "download")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return nil, err
	}
	var args []string
	for _, p := range c.pkgs {
		f.logf("downloading %s %s (%.1f MB)", p.Name, p.Version, float64(p.Size)/1e6)
		args = append(args, p.Name+"="+p.Version)
	}
	if err := a.download(ctx, c.suite, dl, args...); err != nil {
		var af *aptFailure
		if errors.As(err, &af) {
			return nil, mirrorError(a.mirror, af)
		}
		return nil, err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) == 0 {
		return nil, fmt.Errorf("apt-get download of %s left no .deb file", strings.Join(args, " "))
	}
	unpack := filepath.Join(tmp, "unpack")
	for _, deb := range debs {
		if _, stderr, err := runCmd(ctx, "", "dpkg-deb", "-x", deb, unpack); err != nil {
			return nil, fmt.Errorf("unpack %s: %v: %s", filepath.Base(deb), err, lastLine(stderr))
		}
	}
	for _, want := range []struct {
		name     string
		paths    []string
		optional bool
	}{
		{"vmlinuz", []string{"usr/lib/modules/" + c.release + "/vmlinuz", "boot/vmlinuz-" + c.release}, false},
		{"config", []string{"usr/lib/modules/" + c.release + "/config", "boot/config-" + c.release}, false},
		{"System.map", []string{"usr/lib/modules/" + c.release + "/System.map", "boot/System.map-" + c.release}, true},
	} {
		found := false
		for _, p := range want.paths {
			err := os.Rename(filepath.Join(unpack, filepath.FromSlash(p)), filepath.Join(tmp, want.name))
			if err == nil {
				found = true
				break
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
		}
		if !found && !want.optional {
			var names []string
			for _, p := range c.pkgs {
				names = append(names, p.Name)
			}
			return nil, fmt.Errorf("Debian packages %s hold no %s", strings.Join(names, ", "), want.name)
		}
	}
	if err := os.RemoveAll(dl); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(unpack); err != nil {
		return nil, err
	}

	f.logf("extracting vmlinux")
	if err := kernel.ExtractVmlinux(filepath.Join(tmp, "vmlinuz"), filepath.Join(tmp, "vmlinux")); err != nil {
		return nil, err
	}
	cfg, err := kernel.ReadConfig(filepath.Join(tmp, "config"))
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("Debian kernel %s (%s)", c.release, c.suite)
	if err := cfg.Require(what, kernel.RequiredSymbols...); err != nil {
		return nil, err
	}
	m := manifest{Release: c.release, Version: c.version, Suite: c.suite, Mirror: a.mirror, Fetched: time.Now().UTC()}
	entry, err := staged.Commit(m)
	if err != nil {
		return nil, err
	}
	img, err := openEntry(store, c.release)
	if err != nil {
		return nil, err
	}
	f.logf("kernel %s ready in %s", c.release, entry)
	return img, nil
}

// wrapError has a message of its own and matches the errors it wraps.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// firstSubSchedSeries is the first kernel series with sched_ext cgroup
// sub-schedulers: EXT_SUB_SCHED is def_bool y there whenever SCHED_CLASS_EXT
// and CGROUPS are, as in every Debian cloud kernel build.
var firstSubSchedSeries = [2]int{7, 1}

// Listing is a cloud kernel release a suite offers.
type Listing struct {
	Release string
	Suite   string
	// Cached is set when the release is in the cache; its config was then
	// checked for EXT_SUB_SCHED=y and the rest of kernel.RequiredSymbols.
	Cached bool
	// Default is set for the remembered default kernel.
	Default bool
}

// List returns the cloud-amd64 kernel releases of the searched suites that
// have sub-schedulers (series 7.1 or newer), newest first within a suite.
func (f *Fetcher) List(ctx context.Context) ([]Listing, error) {
	cacheDir, err := f.cacheDir()
	if err != nil {
		return nil, err
	}
	mirror := strings.TrimRight(f.Mirror, "/")
	if mirror == "" {
		if mirror, err = MirrorFromSystem(); err != nil {
			f.logf("%v; using %s", err, DefaultMirror)
			mirror = DefaultMirror
		}
	}
	a := &apt{dir: filepath.Join(cacheDir, "apt"), mirror: mirror}
	def, _ := DefaultRelease(cacheDir)
	var out []Listing
	for _, suite := range suites {
		f.logf("updating package lists of Debian %s from %s", suite, a.mirror)
		if err := a.update(ctx, suite); err != nil {
			var af *aptFailure
			if errors.As(err, &af) && af.kind == failNotFound {
				continue
			}
			if errors.As(err, &af) {
				return nil, mirrorError(a.mirror, af)
			}
			return nil, err
		}
		rels, err := a.releases(ctx, suite)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(rels, func(x, y string) int { return compareRelease(y, x) })
		for _, r := range rels {
			if !hasSubScheds(r) {
				continue
			}
			_, cerr := Cached(cacheDir, r)
			out = append(out, Listing{Release: r, Suite: suite, Cached: cerr == nil, Default: r == def})
		}
	}
	return out, nil
}

// hasSubScheds reports whether a release's series is one with sub-schedulers.
func hasSubScheds(release string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(KernelSeries(release), "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major > firstSubSchedSeries[0] || major == firstSubSchedSeries[0] && minor >= firstSubSchedSeries[1]
}
