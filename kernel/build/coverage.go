package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/cache"
)

// A coverage kernel (Options.Coverage) is built with kconfig.Coverage's
// fragment (CONFIG_GCOV_KERNEL) and gcc's profiling of ProfiledObjects
// only, asked for on make's command line (GCOV_PROFILE_<object>.o=y): the
// tree's copy is not edited for it, and the same build directory serves
// coverage and plain builds, each switch recompiling those objects.
//
// Its cache entry keeps what measuring it needs later on the host, when
// the build directory may hold another build: in coverageDir, the gcc
// notes (.gcno) of every profiled object at its path in the build
// directory (notes/), the sources the compiler read for them at their
// paths in the tree (src/), and Coverage in the manifest.

// ProfiledObjects are the objects a coverage kernel profiles, relative to
// the build directory: the sched_ext code, whose kernel/sched/ext/*.c are
// #included into kernel/sched/build_policy.c.
var ProfiledObjects = []string{"kernel/sched/build_policy.o"}

// coverageDir holds a coverage kernel's notes and sources in its entry.
const coverageDir = "gcov"

// ErrNoCoverage is wrapped by OpenCoverage's error for a kernel that was not
// built with Options.Coverage.
var ErrNoCoverage = errors.New("kernel without gcov data")

// Coverage is what the cache entry of a coverage kernel says about its
// gcov data.
type Coverage struct {
	// ObjDir is the build directory the kernel was built in: the
	// kernel's gcov data of an object is at
	// /sys/kernel/debug/gcov<ObjDir>/<object>.gcda.
	ObjDir string `json:"obj_dir"`
	// SrcDir is the tree copy the compiler read: gcov's source paths
	// are below it.
	SrcDir string `json:"src_dir"`
	// Objects are the profiled objects (ProfiledObjects).
	Objects []string `json:"objects"`
	// GCOV is the gcov program of the gcc that built the kernel (gcov
	// must match the compiler's version), e.g. "gcov-12"; Compiler is
	// that gcc's version.
	GCOV     string `json:"gcov"`
	Compiler string `json:"compiler"`
	// Patches are the patches applied to the tree copy, in order, their
	// text kept in the entry: where the lines of a change to the tree
	// are in the compiled sources follows from them.
	Patches []CoveragePatch `json:"patches,omitempty"`

	// Filled in by OpenCoverage: Notes holds the .gcno files at their
	// paths relative to ObjDir, Sources the compiled sources at their
	// paths relative to SrcDir; Tree is the tree that was built (before
	// any patch), Entry the cache entry.
	Notes   string `json:"-"`
	Sources string `json:"-"`
	Tree    string `json:"-"`
	Entry   string `json:"-"`
}

// CoveragePatch is a patch a coverage kernel was built with.
type CoveragePatch struct {
	Name string `json:"name"`
	// File holds its text: relative to the entry in the manifest,
	// absolute once OpenCoverage returned it.
	File string `json:"file"`
	// Test marks scxcheck's test-only patch.
	Test bool `json:"test,omitempty"`
}

// coverageRecipe is KeyInputs.Coverage of a coverage kernel: it changes
// whenever what a coverage entry holds changes.
const coverageRecipe = 1

// GuestDir is the directory of the kernel's gcov data in the guest, below
// which each profiled object's .gcda is at its path relative to ObjDir.
func (c *Coverage) GuestDir() string { return "/sys/kernel/debug/gcov" + c.ObjDir }

// coverageMakeArgs are the make variables that profile ProfiledObjects.
func coverageMakeArgs() []string {
	var out []string
	for _, o := range ProfiledObjects {
		out = append(out, "GCOV_PROFILE_"+filepath.Base(o)+"=y")
	}
	return out
}

// findGcov returns the gcov of the gcc that builds the kernel (gcov reads
// only the notes and data of its own gcc version) and that version. Its
// error wraps ErrToolchain.
func findGcov(ctx context.Context, r Runner) (prog, version string, err error) {
	out, err := output(ctx, r, "", "gcc", "-dumpfullversion")
	if err != nil {
		return "", "", &wrapError{fmt.Sprintf("coverage build: gcc version: %v", err), []error{ErrToolchain}}
	}
	version = strings.TrimSpace(out)
	major, _, _ := strings.Cut(version, ".")
	for _, name := range []string{"gcov-" + major, "gcov"} {
		if _, err := lookPath(name); err != nil {
			continue
		}
		if v := toolVersion(ctx, r, name); strings.Contains(v, " "+version) {
			return name, version, nil
		}
	}
	return "", "", &wrapError{fmt.Sprintf("a coverage build needs the gcov of gcc %s (gcov-%s), which this machine lacks: "+
		"on Debian, apt-get install gcc-%s", version, major, major), []error{ErrToolchain}}
}

// stageCoverage copies a coverage kernel's notes and sources from the
// build directory obj and the tree copy src into the staged entry dir:
// the .gcno of every profiled object, every file of src its compilation
// read (kbuild's dependency list in obj/<dir>/.<object>.cmd) or one of
// patches changed, and the patches; it records the patches in cov.
func stageCoverage(dir, obj, src string, patches []Patch, cov *Coverage) error {
	cov.Patches = nil
	for i, p := range patches {
		rel := filepath.Join(coverageDir, "patches", fmt.Sprintf("%04d.patch", i+1))
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return fmt.Errorf("keep the patches: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), p.Data, 0o644); err != nil {
			return fmt.Errorf("keep the patches: %w", err)
		}
		cov.Patches = append(cov.Patches, CoveragePatch{Name: p.Name, File: rel, Test: p.Test})
	}
	files := map[string]bool{}
	for _, o := range ProfiledObjects {
		stem := strings.TrimSuffix(o, ".o")
		if err := copyMkdir(filepath.Join(obj, stem+".gcno"), filepath.Join(dir, coverageDir, "notes", stem+".gcno")); err != nil {
			return fmt.Errorf("keep the gcov notes of %s: %w (was it compiled with profiling?)", o, err)
		}
		deps, err := readDeps(filepath.Join(obj, filepath.Dir(o), "."+filepath.Base(o)+".cmd"), src)
		if err != nil {
			return fmt.Errorf("keep the sources of %s: %w", o, err)
		}
		for _, d := range deps {
			files[d] = true
		}
	}
	for _, p := range patches {
		for _, f := range p.Files {
			files[f] = true
		}
	}
	for _, f := range slices.Sorted(maps.Keys(files)) {
		from := filepath.Join(src, f)
		if fi, err := os.Stat(from); err != nil || !fi.Mode().IsRegular() {
			continue // a file a patch deleted
		}
		if err := copyMkdir(from, filepath.Join(dir, coverageDir, "src", f)); err != nil {
			return fmt.Errorf("keep the compiled sources: %w", err)
		}
	}
	return nil
}

// copyMkdir copies the file from to the path to, creating its directory.
func copyMkdir(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return fsutil.CopyFile(from, to)
}

// readDeps returns the files below src that kbuild's command file of an
// object lists as its source and dependencies, relative to src.
func readDeps(cmdFile, src string) ([]string, error) {
	f, err := os.Open(cmdFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	in := false
	s := bufio.NewScanner(f)
	s.Buffer(nil, 16<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case strings.HasPrefix(line, "source_"):
			_, v, _ := strings.Cut(line, ":=")
			out = appendBelow(out, strings.TrimSpace(v), src)
		case strings.HasPrefix(line, "deps_"):
			in = strings.HasSuffix(line, `\`)
		case in:
			in = strings.HasSuffix(line, `\`)
			p := strings.TrimSpace(strings.TrimSuffix(line, `\`))
			if !strings.HasPrefix(p, "$(") {
				out = appendBelow(out, p, src)
			}
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", cmdFile, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no source below %s", cmdFile, src)
	}
	return out, nil
}

// appendBelow appends p, relative to src, when it is below src.
func appendBelow(out []string, p, src string) []string {
	rel, err := filepath.Rel(src, p)
	if err != nil || !filepath.IsAbs(p) || rel == ".." || strings.HasPrefix(rel, "../") {
		return out
	}
	return append(out, rel)
}

// OpenCoverage returns the gcov data of the kernel image (a vmlinux or
// bzImage in a cache entry of scxcheck's builds), checking the entry. A
// kernel that is not such an entry, or was built without
// Options.Coverage, is an error wrapping ErrNoCoverage.
func OpenCoverage(image string) (*Coverage, error) {
	abs, err := filepath.Abs(image)
	if err != nil {
		return nil, err
	}
	entry := filepath.Dir(abs)
	store := kernels("")
	store.Dir = filepath.Dir(entry)
	noCoverage := func(why string) error {
		return &wrapError{fmt.Sprintf("kernel %s has no gcov data (%s): build one with `scxcheck kernel build --coverage` "+
			"(or pass --tree DIR to run with --coverage)", image, why), []error{ErrNoCoverage}}
	}
	if _, err := os.Stat(filepath.Join(entry, manifestName)); err != nil {
		return nil, noCoverage("not a kernel scxcheck built")
	}
	var m manifest
	if _, err := store.Open(filepath.Base(entry), &m); err != nil {
		var ce *cache.Error
		if errors.As(err, &ce) {
			return nil, noCoverage(ce.Detail)
		}
		return nil, err
	}
	if m.Coverage == nil {
		return nil, noCoverage("built without --coverage")
	}
	c := *m.Coverage
	c.Notes = filepath.Join(entry, coverageDir, "notes")
	c.Sources = filepath.Join(entry, coverageDir, "src")
	c.Tree, c.Entry = m.TreeDir, entry
	c.Patches = slices.Clone(c.Patches)
	for i := range c.Patches {
		c.Patches[i].File = filepath.Join(entry, c.Patches[i].File)
	}
	cfg, err := kernel.ReadConfig(filepath.Join(entry, "config"))
	if err != nil {
		return nil, err
	}
	if cfg["CONFIG_GCOV_KERNEL"] != "y" {
		return nil, noCoverage("its config lacks CONFIG_GCOV_KERNEL=y")
	}
	if _, err := lookPath(c.GCOV); err != nil {
		return nil, &wrapError{fmt.Sprintf("kernel %s was built by gcc %s, whose gcov (%s) is gone: reinstall it, or build again",
			image, c.Compiler, c.GCOV), []error{ErrNoCoverage}}
	}
	return &c, nil
}
