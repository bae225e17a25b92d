package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scxcheck/scxcheck/kernel/cache"
	"github.com/scxcheck/scxcheck/kernel/debian"
)

// DefaultSeries is the kernel series whose Debian sources scxcheck builds
// when no tree is given and no default kernel is cached to match.
const DefaultSeries = "7.2"

// defaultSeries is the series of the default kernel: the remembered
// default Debian kernel's, else DefaultSeries.
func defaultSeries(cacheDir string) string {
	if rel, err := debian.DefaultRelease(cacheDir); err == nil {
		if s := debian.KernelSeries(rel); s != "" {
			return s
		}
	}
	return DefaultSeries
}

// defaultTree returns Debian's linux-source-<series> unpacked in
// cacheDir/build/trees/. An unpacked tree is used as is, without asking the
// mirror; otherwise the package is looked for in each of debian.Suites() in
// turn, downloaded with scxcheck's private apt configuration and its tarball
// unpacked. A series no suite has is an error wrapping ErrNotTree when the
// caller chose it, else debian.ErrMirror.
func defaultTree(ctx context.Context, r Runner, cacheDir, series string, chosen bool, mirror string, logf func(string, ...any)) (*Tree, error) {
	trees := filepath.Join(cacheDir, "build", "trees")
	pkg := "linux-source-" + series
	if t := newestTree(trees, pkg); t != nil {
		return t, nil
	}

	a, err := debian.NewApt(cacheDir, mirror)
	if err != nil {
		return nil, err
	}
	var suite string
	var p debian.Package
	for _, s := range debian.Suites() {
		logf("looking for %s in Debian %s at %s", pkg, s, a.Mirror())
		if err := a.Update(ctx, s); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", pkg, err)
		}
		pkgs, err := a.Show(ctx, s, pkg)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", pkg, err)
		}
		if found, ok := pkgs[pkg]; ok {
			suite, p = s, found
			break
		}
	}
	if suite == "" {
		kind := debian.ErrMirror
		if chosen {
			kind = ErrNotTree
		}
		return nil, &wrapError{fmt.Sprintf("neither Debian %s at %s has %s (the sources of kernel series %s); pass --tree DIR",
			strings.Join(debian.Suites(), " nor "), a.Mirror(), pkg, series), []error{kind}}
	}

	tmp, err := cache.NewPartial(trees, pkg)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	logf("downloading %s %s from Debian %s (%.0f MB)", pkg, p.Version, suite, float64(p.Size)/1e6)
	debs, err := a.Download(ctx, suite, tmp, pkg+"="+p.Version)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", pkg, err)
	}
	unpack := filepath.Join(tmp, "deb")
	if err := debian.UnpackDeb(ctx, debs[0], unpack); err != nil {
		return nil, err
	}
	tarballs, _ := filepath.Glob(filepath.Join(unpack, "usr/src/linux-source-*.tar.*"))
	if len(tarballs) != 1 {
		return nil, fmt.Errorf("%s %s holds %d source tarballs in usr/src, not one", pkg, p.Version, len(tarballs))
	}
	logf("unpacking %s", filepath.Base(tarballs[0]))
	src := filepath.Join(tmp, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		return nil, err
	}
	if _, err := output(ctx, r, src, "tar", "-xf", tarballs[0]); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", filepath.Base(tarballs[0]), err)
	}
	top, _ := filepath.Glob(filepath.Join(src, "*"))
	if len(top) != 1 {
		return nil, fmt.Errorf("%s does not unpack into one directory", filepath.Base(tarballs[0]))
	}
	// The name says which package version the tree is; its existence that
	// it is complete.
	final := filepath.Join(trees, pkg+"_"+p.Version)
	if err := os.Rename(top[0], final); err != nil {
		if t := newestTree(trees, pkg); t != nil { // unpacked by another scxcheck meanwhile
			return t, nil
		}
		return nil, err
	}
	t := newestTree(trees, pkg)
	if t == nil {
		return nil, fmt.Errorf("%s unpacked into %s is not a kernel tree", pkg, final)
	}
	return t, nil
}

// newestTree returns the unpacked tree of pkg with the highest package
// version in trees, or nil.
func newestTree(trees, pkg string) *Tree {
	dirs, _ := filepath.Glob(filepath.Join(trees, pkg+"_*"))
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(b, a) })
	for _, d := range dirs {
		t, err := OpenTree(d)
		if err == nil {
			_, ver, _ := strings.Cut(filepath.Base(d), "_")
			t.Origin = fmt.Sprintf("Debian %s %s", pkg, ver)
			return t
		}
	}
	return nil
}

// compareVersions orders package versions by their runs of digits as
// numbers; as in Debian, a "~" suffix sorts before the version without it.
func compareVersions(a, b string) int {
	a0, aTilde, _ := strings.Cut(a, "~")
	b0, bTilde, _ := strings.Cut(b, "~")
	if c := compareRuns(a0, b0); c != 0 || aTilde == bTilde {
		if c == 0 {
			return compareRuns(aTilde, bTilde)
		}
		return c
	}
	switch {
	case aTilde == "":
		return 1
	case bTilde == "":
		return -1
	}
	return compareRuns(aTilde, bTilde)
}

func compareRuns(a, b string) int {
	ta, tb := numberRuns(a), numberRuns(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] != tb[i] {
			if ta[i] < tb[i] {
				return -1
			}
			return 1
		}
	}
	return len(ta) - len(tb)
}

func numberRuns(s string) []int {
	var out []int
	n, in := 0, false
	for _, c := range s + "x" {
		if c >= '0' && c <= '9' {
			n, in = n*10+int(c-'0'), true
			continue
		}
		if in {
			out = append(out, n)
		}
		n, in = 0, false
	}
	return out
}
