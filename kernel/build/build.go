package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/cache"
	"github.com/scxcheck/scxcheck/kernel/kconfig"
)

// Options describe a kernel build.
type Options struct {
	// CacheDir holds everything: build/trees (Debian's sources),
	// build/work (build directories), build/kernels (cache entries),
	// build/pahole-trixie, and apt's private state in apt/.
	CacheDir string
	// Tree is the kernel source tree. "" = Debian's linux-source-<Series>,
	// downloaded and unpacked into the cache.
	Tree string
	// Series is the kernel series (major.minor, e.g. "7.3") of Debian's
	// sources to build when Tree is "" ("" = the default kernel's series,
	// else DefaultSeries). It must be "" with a Tree.
	Series string
	// Base is the config the fragments are merged onto: "tinyconfig"
	// (the default, ""), "defconfig", "allnoconfig", or a config file.
	Base string
	// Fragments are merged onto the base in order. Use kconfig.Default()
	// for scxcheck's own, before any of the user's.
	Fragments []kconfig.Fragment
	// Patches are applied, in order, to the copy of the tree the build
	// works on (never to the tree itself): patch files, mboxes,
	// directories of patches (of per-series subdirectories: the tree's).
	Patches []string
	// TestPatch applies scxcheck's test-only patch for the tree's series
	// (TestPatches) after Patches; a series it has no patch for is an
	// error wrapping ErrPatch. One of Patches with the same content is
	// not applied twice.
	TestPatch bool
	// TestPatches holds the test-only patches, a directory per series (nil
	// = the ones embedded in scxcheck; for tests).
	TestPatches fs.FS
	// Pahole is the pahole to use ("" = the system's when v1.26 or newer,
	// else Debian trixie's, provided in the cache).
	Pahole string
	// Mirror is the Debian mirror for sources and pahole ("" = the
	// machine's).
	Mirror string
	// Jobs is make's -j (0 = the number of CPUs).
	Jobs int
	// Force builds even when the cache has the kernel.
	Force bool
	// Coverage builds a coverage kernel: gcov profiling of the sched_ext
	// code (kconfig.Coverage's fragment after Fragments, ProfiledObjects
	// profiled), its notes and sources kept in the cache entry
	// (OpenCoverage). It is an entry of its own.
	Coverage bool
	// WorkDir overrides the build directory (for the benchmark).
	WorkDir string
	// Log receives progress lines (nil = silent).
	Log func(format string, args ...any)
	// Runner runs make, patch, git and the compiler (nil = ExecRunner).
	Runner Runner
	// ProgressInterval is how often a running build reports (0 = 20 s).
	ProgressInterval time.Duration
}

// Result is a built (or cached) kernel.
type Result struct {
	Image   *kernel.Image
	Entry   string // the cache entry directory
	Cached  bool   // taken from the cache, not built
	Tree    *Tree
	Key     string
	Log     string // the build log (in the entry)
	Elapsed time.Duration
	// BuildTime is how long building the kernel took: Elapsed for a
	// kernel just built, what its cache entry records for a cached one
	// (0 when it records nothing readable).
	BuildTime time.Duration
	// Where a build's time went: copying the tree, configuring, make.
	Copy, Configure, Make time.Duration
	// TestPatch says the kernel has scxcheck's test-only patch (Options.
	// TestPatch, or the same patch given in Options.Patches).
	TestPatch bool
	// Patches are the patches applied, in order (the test-only one
	// marked Test).
	Patches []Patch
	// Coverage is the gcov data of a coverage kernel (Options.Coverage),
	// nil otherwise.
	Coverage *Coverage
}

// baseTargets are the make targets that can be a base config.
var baseTargets = []string{"tinyconfig", "defconfig", "allnoconfig"}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		o.Log(format, args...)
	}
}

// Build builds the kernel o describes, or returns it from the cache. Errors
// wrap ErrNotTree, ErrPatch, ErrFragment, kernel.ErrConfig (a requested
// symbol did not survive olddefconfig; the message names it and the
// dependency that is off), ErrToolchain, ErrBuild, or debian.ErrMirror.
func Build(ctx context.Context, o Options) (_ *Result, err error) {
	start := time.Now()
	if o.CacheDir == "" {
		return nil, errors.New("build kernel: no cache directory")
	}
	if o.Runner == nil {
		o.Runner = ExecRunner{}
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 20 * time.Second
	}
	if o.Base == "" {
		o.Base = "tinyconfig"
	}
	r := o.Runner
	if o.Coverage {
		o.Fragments = append(slices.Clip(o.Fragments), kconfig.Coverage())
	}

	// Everything the user passed is checked before anything slow.
	base, baseData, err := o.baseInput()
	if err != nil {
		return nil, err
	}
	var fragKeys []string
	for _, f := range o.Fragments {
		if _, err := f.Assignments(); err != nil {
			return nil, &wrapError{"config fragment " + err.Error(), []error{ErrFragment}}
		}
		fragKeys = append(fragKeys, fsutil.HashBytes(f.Data))
	}
	// The patches are chosen by the tree's series: read from its Makefile,
	// or the one of Debian's sources that will be fetched.
	var tree *Tree
	series := o.Series
	switch {
	case o.Tree != "" && series != "":
		return nil, &wrapError{fmt.Sprintf("kernel series %s and tree %s exclude each other: the series chooses Debian's sources", series, o.Tree), []error{ErrNotTree}}
	case o.Tree != "":
		if tree, err = OpenTree(o.Tree); err != nil {
			return nil, err
		}
		series = Series(tree.Version)
	case series == "":
		series = defaultSeries(o.CacheDir)
	default:
		if err := CheckSeries(series); err != nil {
			return nil, &wrapError{"kernel series " + err.Error(), []error{ErrNotTree}}
		}
	}
	patches, err := o.patches(series)
	if err != nil {
		return nil, err
	}
	if err := checkToolchain(ctx, r, configTools, buildTools); err != nil {
		return nil, err
	}
	var cov *Coverage
	if o.Coverage {
		gcovProg, gccVersion, err := findGcov(ctx, r)
		if err != nil {
			return nil, err
		}
		cov = &Coverage{Objects: ProfiledObjects, GCOV: gcovProg, Compiler: gccVersion}
	}
	if tree == nil {
		if tree, err = defaultTree(ctx, r, o.CacheDir, series, o.Series != "", o.Mirror, o.logf); err != nil {
			return nil, err
		}
	}
	pahole, paholeLine, err := findPahole(ctx, r, o.Pahole, o.CacheDir, o.Mirror, o.logf)
	if err != nil {
		return nil, err
	}

	treeKey, err := tree.Key(ctx, r, filepath.Join(o.CacheDir, "build", "index"))
	if err != nil {
		return nil, err
	}
	in := KeyInputs{
		Recipe: recipe, Tree: treeKey, Patches: patchesKey(patches), Base: base, Fragments: fragKeys,
		Arch: arch, CC: toolVersion(ctx, r, "gcc"), LD: toolVersion(ctx, r, "ld"), Pahole: paholeLine,
	}
	if o.Coverage {
		in.Coverage = coverageRecipe
	}
	key := in.Key()
	store, name := kernels(o.CacheDir), entryName(tree.Version, key)
	entry := store.Path(name)
	res := &Result{Entry: entry, Tree: tree, Key: key, Log: filepath.Join(entry, "build.log"),
		TestPatch: slices.ContainsFunc(patches, func(p Patch) bool { return p.Test }), Patches: patches}
	fromCache := func() bool {
		img, m, err := openEntry(store, name, key)
		if err != nil {
			return false
		}
		if o.Coverage {
			if res.Coverage, err = OpenCoverage(img.Boot); err != nil {
				return false
			}
		}
		store.Touch(name)
		o.logf("kernel from cache: %s (built %s in %s%s)", entry, m.Built.Local().Format("2006-01-02 15:04"), m.Duration, testPatchNote(patches))
		res.Image, res.Cached, res.Elapsed = img, true, time.Since(start)
		res.BuildTime, _ = time.ParseDuration(m.Duration)
		return true
	}
	if !o.Force && fromCache() {
		return res, nil
	}

	// One build directory per tree, patched or not: the kernel is built
	// from a copy of the tree in it, so that patches never touch the tree
	// and switching patches rebuilds only what they change.
	work := o.WorkDir
	if work == "" {
		work = filepath.Join(o.CacheDir, "build", "work", fsutil.HashString(tree.Dir)[:16])
		if o.Coverage {
			// A coverage kernel's config differs from a plain one's in
			// CONFIG_CONSTRUCTORS, which nearly every object depends on:
			// switching one build directory between the two would rebuild
			// the whole kernel every time.
			work += "-coverage"
		}
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	unlock, err := cache.Lock(ctx, work, func() { o.logf("waiting for another scxcheck building in %s", work) })
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !o.Force && fromCache() { // another scxcheck may have built it while this one waited
		return res, nil
	}
	os.WriteFile(filepath.Join(work, "tree"), []byte(tree.Dir+"\n"), 0o644)

	logPath := filepath.Join(work, "build.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			err = &logError{err: err, log: logPath}
		}
	}()
	defer logFile.Close()
	fmt.Fprintf(logFile, "scxcheck kernel build %s\ntree %s (%s) %s\nbase %s\nfragments %s\npatches %d%s\npahole %s\n\n",
		time.Now().Format(time.RFC3339), tree.Dir, tree.Version, tree.Origin, o.Base, fragmentNames(o.Fragments), len(patches), testPatchNote(patches), paholeLine)

	src := filepath.Join(work, "src")
	patchedPath := filepath.Join(work, "patched.json")
	prev := readPatchedState(patchedPath)
	if _, err := os.Stat(src); err != nil {
		o.logf("copying %s to %s (the build works on a copy)", tree.Dir, src)
	}
	copyStart := time.Now()
	n, err := syncTree(ctx, tree.Dir, src, filepath.Join(work, "sync.state"), slices.Collect(maps.Keys(prev)))
	if err != nil {
		return nil, fmt.Errorf("copy kernel tree: %w", err)
	}
	fmt.Fprintf(logFile, "copied %d files of %s to %s\n", n, tree.Dir, src)
	// The key was taken before the copy (and perhaps before waiting for
	// another build): if the tree changed since, the copy is not what the
	// key names, and caching it under that key would hand the wrong kernel
	// to the next build of the old content.
	if after, err := tree.Key(ctx, r, filepath.Join(o.CacheDir, "build", "index")); err != nil {
		return nil, err
	} else if after != treeKey {
		return nil, &wrapError{fmt.Sprintf("kernel tree %s changed while scxcheck was copying it (key %.20s before, %.20s after): "+
			"not building a kernel whose source is unknown; build again once the tree is still", tree.Dir, treeKey, after), []error{ErrNotTree}}
	}
	if err := markPatching(patchedPath, prev, patches); err != nil {
		return nil, err
	}
	for _, p := range patches {
		if p.Test {
			o.logf("applying scxcheck's test-only patch for %s: %s (sched_ext.test_self_sub_dispatch; --no-test-patch leaves it out)", series, p.Name)
		}
	}
	if err := applyPatches(ctx, r, src, tree.Version, patches); err != nil {
		return nil, err
	}
	for _, p := range patches {
		fmt.Fprintf(logFile, "applied %s\n", p.Name)
	}
	if err := keepPatchedTimes(src, patchedPath, prev, patches); err != nil {
		return nil, err
	}
	res.Copy = time.Since(copyStart)

	obj := filepath.Join(work, "obj")
	if err := os.MkdirAll(obj, 0o755); err != nil {
		return nil, err
	}
	mk := func(args ...string) []string {
		vars := []string{"-C", src, "O=" + obj, "ARCH=" + arch, "PAHOLE=" + pahole}
		if o.Coverage {
			vars = append(vars, coverageMakeArgs()...)
		}
		return append(vars, args...)
	}
	what := tree.Dir
	if tree.Origin != "" {
		what += " (" + tree.Origin + ")"
	}
	withPatches := ""
	if len(patches) > 0 {
		withPatches = fmt.Sprintf(", with %d patch(es)", len(patches))
	}
	o.logf("configuring kernel %s from %s%s: %s + %s", tree.Version, what, withPatches, o.Base, fragmentNames(o.Fragments))
	configStart := time.Now()
	if err := o.configure(ctx, src, what, obj, baseData, mk, logFile); err != nil {
		return nil, err
	}
	res.Configure = time.Since(configStart)
	if err := checkToolchain(ctx, r, buildTools, nil); err != nil {
		return nil, err
	}
	forceRelink(obj, paholeLine)

	o.logf("building in %s with make -j%d (log: %s)", obj, o.Jobs, logPath)
	p := newProgress(logFile, o.logf, o.ProgressInterval)
	p.trim = obj + "/"
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.tick()
			}
		}
	}()
	makeStart := time.Now()
	err = r.Run(ctx, &Cmd{Name: "make", Args: mk("-j"+strconv.Itoa(o.Jobs), "vmlinux", "bzImage"), Stdout: p, Stderr: p})
	close(done)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		lines := p.errorLines()
		if len(lines) > 12 {
			lines = lines[len(lines)-12:]
		}
		return nil, &wrapError{fmt.Sprintf("kernel build failed (make: %v) after %s; last errors:\n%s\nfull log: %s",
			err, fmtDuration(time.Since(makeStart)), indent(strings.Join(lines, "\n")), logPath), []error{ErrBuild}}
	}
	res.Make = time.Since(makeStart)
	os.WriteFile(filepath.Join(obj, paholeStamp), []byte(paholeLine+"\n"), 0o644)
	o.logf("build: done in %s (%d steps)", fmtDuration(time.Since(makeStart)), p.steps)

	if cov != nil {
		cov.ObjDir, cov.SrcDir = obj, src
	}
	m := manifest{Key: key, Inputs: in, TreeDir: tree.Dir, Origin: tree.Origin, Version: tree.Version,
		Base: o.Base, Frags: fragmentList(o.Fragments), Built: time.Now().UTC(),
		Duration: fmtDuration(time.Since(start)), Coverage: cov}
	for _, p := range patches {
		m.Patches = append(m.Patches, p.Name)
	}
	logFile.Sync()
	img, err := collect(ctx, r, obj, logPath, store, name, m, func(dir string) error {
		if cov == nil {
			return nil
		}
		return stageCoverage(dir, obj, src, patches, cov)
	})
	if err != nil {
		return nil, err
	}
	res.Image, res.Elapsed = img, time.Since(start)
	res.BuildTime = res.Elapsed
	if cov != nil {
		if res.Coverage, err = OpenCoverage(img.Boot); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// patches loads the patches for a tree of series: the user's, then
// scxcheck's test-only one (with TestPatch) unless the user's include it.
// The test-only patch is marked as such among the user's either way.
func (o *Options) patches(series string) ([]Patch, error) {
	patches, err := LoadPatches(o.Patches, series)
	if err != nil {
		return nil, err
	}
	test, err := TestPatches(o.TestPatches, series)
	if err != nil {
		if o.TestPatch {
			return nil, err
		}
		return patches, nil
	}
	for _, t := range test {
		if i := slices.IndexFunc(patches, func(p Patch) bool { return bytes.Equal(p.Data, t.Data) }); i >= 0 {
			patches[i].Test = true
			if o.TestPatch {
				o.logf("patch %s is scxcheck's test-only patch %s: applied once", patches[i].Name, t.Name)
			}
		} else if o.TestPatch {
			patches = append(patches, t)
		}
	}
	return patches, nil
}

// testPatchNote says, for the progress and the build log, whether patches
// include scxcheck's test-only patch.
func testPatchNote(patches []Patch) string {
	for _, p := range patches {
		if p.Test {
			return ", with scxcheck's test-only patch " + p.Name
		}
	}
	return ""
}

// baseInput returns the base's key and, for a file, its content.
func (o *Options) baseInput() (string, []byte, error) {
	for _, t := range baseTargets {
		if o.Base == t {
			return "make:" + t, nil, nil
		}
	}
	data, err := os.ReadFile(o.Base)
	if err != nil {
		return "", nil, &wrapError{fmt.Sprintf("--base %s: not %s, nor a readable config file (%v)",
			o.Base, strings.Join(baseTargets, ", "), unwrapPathError(err)), []error{ErrFragment}}
	}
	if _, err := kernel.ReadConfig(o.Base); err != nil {
		return "", nil, &wrapError{fmt.Sprintf("--base %s: %v", o.Base, err), []error{ErrFragment}}
	}
	return "file:" + fsutil.HashBytes(data), data, nil
}

// configure writes obj/.config: the base, the fragments merged onto it, then
// olddefconfig; and checks that every symbol the fragments set survived.
func (o *Options) configure(ctx context.Context, src, what, obj string, baseData []byte, mk func(...string) []string, log io.Writer) error {
	r := o.Runner
	cfgPath := filepath.Join(obj, ".config")
	runMake := func(target string) error {
		var out bytes.Buffer
		err := r.Run(ctx, &Cmd{Name: "make", Args: mk(target), Stdout: io.MultiWriter(log, &out), Stderr: io.MultiWriter(log, &out)})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) > 10 {
				lines = lines[len(lines)-10:]
			}
			return &wrapError{fmt.Sprintf("make %s in %s failed: %v\n%s", target, src, err, indent(strings.Join(lines, "\n"))), []error{ErrBuild}}
		}
		return nil
	}
	if baseData == nil {
		if err := runMake(o.Base); err != nil {
			return err
		}
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			return fmt.Errorf("make %s wrote no %s: %w", o.Base, cfgPath, err)
		}
		baseData = data
	}
	merged, err := kconfig.Merge(baseData, o.Fragments)
	if err != nil {
		return &wrapError{"config fragment " + err.Error(), []error{ErrFragment}}
	}
	for _, ov := range merged.Overrides {
		o.logf("config: %s", ov)
	}
	if err := os.WriteFile(cfgPath, merged.Config, 0o644); err != nil {
		return err
	}
	if err := runMake("olddefconfig"); err != nil {
		return err
	}
	return kconfig.Verify(src, cfgPath, merged.Requests, fmt.Sprintf("base %s, tree %s", o.Base, what), o.logf)
}

// paholeStamp records, in the build directory, the pahole the last build
// used.
const paholeStamp = ".scxcheck-pahole"

// forceRelink removes the linked vmlinux when the pahole changed since the
// last build in obj: the kernel's make does not relink for a new pahole
// alone, and the BTF would stay what the old one produced.
func forceRelink(obj, pahole string) {
	prev, err := os.ReadFile(filepath.Join(obj, paholeStamp))
	if err == nil && strings.TrimSpace(string(prev)) == pahole {
		return
	}
	for _, f := range []string{"vmlinux.unstripped", "vmlinux"} {
		os.Remove(filepath.Join(obj, f))
	}
}

// collect copies the kernel out of obj into a new cache entry and opens it;
// stageMore adds what else the entry holds (a coverage kernel's gcov data)
// to the staged directory.
func collect(ctx context.Context, r Runner, obj, logPath string, store cache.Store, name string, m manifest, stageMore func(dir string) error) (*kernel.Image, error) {
	staged, err := store.Stage(name)
	if err != nil {
		return nil, err
	}
	defer staged.Discard()
	tmp := staged.Dir
	// The entry's vmlinux keeps symbols and BTF but not the DWARF (100 MB
	// of it for scxcheck's config), like the one inside the bzImage.
	if _, err := output(ctx, r, "", "objcopy", "--strip-debug", filepath.Join(obj, "vmlinux"), filepath.Join(tmp, "vmlinux")); err != nil {
		return nil, fmt.Errorf("strip vmlinux: %w", err)
	}
	for _, f := range []struct{ from, to string }{
		{"arch/x86/boot/bzImage", "bzImage"}, {".config", "config"}, {"System.map", "System.map"},
	} {
		if err := fsutil.CopyFile(filepath.Join(obj, f.from), filepath.Join(tmp, f.to)); err != nil {
			return nil, fmt.Errorf("collect the built kernel: %w", err)
		}
	}
	if err := fsutil.CopyFile(logPath, filepath.Join(tmp, "build.log")); err != nil {
		return nil, err
	}
	cfg, err := kernel.ReadConfig(filepath.Join(tmp, "config"))
	if err != nil {
		return nil, err
	}
	if err := cfg.Require("built kernel config", kernel.RequiredSymbols...); err != nil {
		return nil, err
	}
	if err := stageMore(tmp); err != nil {
		return nil, err
	}
	if _, err := staged.Commit(m); err != nil {
		return nil, err
	}
	img, _, err := openEntry(store, name, m.Key)
	if err != nil {
		return nil, err
	}
	return img, nil
}

func fragmentNames(frags []kconfig.Fragment) string {
	if len(frags) == 0 {
		return "no fragments"
	}
	return strings.Join(fragmentList(frags), ", ")
}

func fragmentList(frags []kconfig.Fragment) []string {
	var names []string
	for _, f := range frags {
		names = append(names, f.Name)
	}
	return names
}
