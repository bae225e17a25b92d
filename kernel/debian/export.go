package debian

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Apt runs apt-get and apt-cache with scxcheck's private configuration under
// a cache directory (CacheDir/apt/<suite>/ for each suite's sources list and
// package lists, CacheDir/apt/archives), for other packages than the kernel:
// kernel sources, a newer pahole. Like the Fetcher it never reads or changes
// /etc/apt's sources or the machine's package state, and apt checks
// signatures against the machine's Debian archive keyring. Its errors wrap
// ErrMirror when the mirror cannot be used.
type Apt struct {
	a *apt
}

// NewApt returns an Apt keeping its state in cacheDir/apt and downloading
// from mirror ("" = MirrorFromSystem(), else DefaultMirror). It fails when
// apt-get, apt-cache or dpkg-deb is missing.
func NewApt(cacheDir, mirror string) (*Apt, error) {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: scxcheck downloads Debian packages with apt-get, apt-cache and dpkg-deb (a Debian-based host): %w", tool, err)
		}
	}
	mirror = strings.TrimRight(mirror, "/")
	if mirror == "" {
		m, err := MirrorFromSystem()
		if err != nil {
			m = DefaultMirror
		}
		mirror = m
	}
	return &Apt{a: &apt{dir: filepath.Join(cacheDir, "apt"), mirror: mirror}}, nil
}

// Mirror is the Debian archive the Apt downloads from.
func (x *Apt) Mirror() string { return x.a.mirror }

// Update downloads suite's package list (e.g. "sid", "trixie").
func (x *Apt) Update(ctx context.Context, suite string) error {
	if err := x.a.update(ctx, suite); err != nil {
		return x.err(err)
	}
	return nil
}

// Package is a binary package of a suite.
type Package struct {
	Name    string
	Version string
	Size    int64 // of the .deb, in bytes
}

// Show returns the candidate versions of the named packages in suite (after
// Update); names the suite lacks are absent from the map.
func (x *Apt) Show(ctx context.Context, suite string, names ...string) (map[string]Package, error) {
	pkgs, err := x.a.show(ctx, suite, names...)
	if err != nil {
		return nil, x.err(err)
	}
	out := make(map[string]Package, len(pkgs))
	for n, p := range pkgs {
		out[n] = Package{Name: p.Name, Version: p.Version, Size: p.Size}
	}
	return out, nil
}

// DependencyClosure returns names and every package they depend on or
// pre-depend on, recursively, in suite (recommendations and virtual packages
// left out), sorted.
func (x *Apt) DependencyClosure(ctx context.Context, suite string, names ...string) ([]string, error) {
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests",
		"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"}, names...)
	stdout, stderr, err := x.a.run(ctx, "", "apt-cache", suite, args...)
	if err != nil {
		return nil, x.err(aptFailed("apt-cache depends", stdout, stderr, err))
	}
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		if line == "" || line[0] == ' ' || line[0] == '<' {
			continue // a dependency line, or a virtual package
		}
		if n := strings.TrimSpace(line); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Download fetches packages ("name" or "name=version") of suite into dir and
// returns the paths of the .deb files there.
func (x *Apt) Download(ctx context.Context, suite, dir string, pkgs ...string) ([]string, error) {
	if err := x.a.download(ctx, suite, dir, pkgs...); err != nil {
		return nil, x.err(err)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) == 0 {
		return nil, fmt.Errorf("apt-get download of %s left no .deb file in %s", strings.Join(pkgs, " "), dir)
	}
	return debs, nil
}

// err turns an apt failure about the mirror into an error wrapping ErrMirror.
func (x *Apt) err(err error) error {
	var af *aptFailure
	if errors.As(err, &af) && af.kind != failOther {
		return mirrorError(x.a.mirror, af)
	}
	return err
}

// UnpackDeb extracts the files of the .deb at path into dir (dpkg-deb -x),
// without installing anything.
func UnpackDeb(ctx context.Context, path, dir string) error {
	if _, stderr, err := runCmd(ctx, "", "dpkg-deb", "-x", path, dir); err != nil {
		return fmt.Errorf("unpack %s: %v: %s", filepath.Base(path), err, lastLine(stderr))
	}
	return nil
}

// KernelSeries returns the "major.minor" of a kernel release, e.g. "7.2" for
// "7.2.13+deb14-cloud-amd64", or "" when release does not start so.
func KernelSeries(release string) string {
	t := releaseTokens(release)
	if len(t) >= 3 && isDigits(t[0]) && t[1] == "." && isDigits(t[2]) {
		return t[0] + "." + t[2]
	}
	return ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// DefaultRelease returns the cloud-amd64 kernel release Debian's
// linux-image-cloud-amd64 metapackage depends on in suite (after Update), or
// "" when suite has none.
func (x *Apt) DefaultRelease(ctx context.Context, suite string) (string, error) {
	r, err := x.a.resolveMeta(ctx, suite)
	if err != nil {
		return "", x.err(err)
	}
	return r, nil
}

// Suites are the Debian suites searched, in order, for kernels with
// sub-schedulers (and their sources).
func Suites() []string { return slices.Clone(suites) }
