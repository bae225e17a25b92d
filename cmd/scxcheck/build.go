package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/build"
	"github.com/scxcheck/scxcheck/kernel/kconfig"
)

// buildFlags are the flags that make scxcheck build a kernel from source.
// `run` and `bench boot` take --tree and --patch; `kernel build` takes all.
type buildFlags struct {
	tree        string
	series      string
	base        string
	configs     listFlag
	patches     listFlag
	noTestPatch bool
	pahole      string
	jobs        int
	force       bool
	coverage    bool
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func (b *buildFlags) registerSource(fs *flag.FlagSet) {
	fs.StringVar(&b.tree, "tree", "", "build the kernel from this source `directory` (default with --patch: Debian's linux-source, fetched into the cache)")
	fs.Var(&b.patches, "patch", "apply this patch `file`, mbox or directory of numbered patches (or of per-series subdirectories such as 7.2/, 7.3/: the tree's) to a copy of the tree before building (repeatable)")
	fs.BoolVar(&b.noTestPatch, "no-test-patch", false, "build without scxcheck's test-only kernel patch (sched_ext.test_self_sub_dispatch, for the recursion specs), which a kernel scxcheck builds otherwise gets")
}

// registerSeries registers --series, which chooses Debian's sources.
func (b *buildFlags) registerSeries(fs *flag.FlagSet) {
	fs.StringVar(&b.series, "series", "", "without --tree, build Debian's linux-source of this kernel `series` (major.minor, e.g. 7.3; default: the default kernel's, else "+build.DefaultSeries+")")
}

// registerJobs registers --jobs and its short form -j (make's -jN works too:
// see makeStyleJobs).
func (b *buildFlags) registerJobs(fs *flag.FlagSet) {
	fs.IntVar(&b.jobs, "jobs", 0, "make's -j `N` (default: the number of CPUs)")
	fs.IntVar(&b.jobs, "j", 0, "short for --jobs (-j N, -jN)")
}

func (b *buildFlags) registerAll(fs *flag.FlagSet) {
	b.registerSource(fs)
	fs.StringVar(&b.base, "base", "tinyconfig", "base config the fragments are merged onto: tinyconfig, defconfig, allnoconfig or a config `file`")
	fs.Var(&b.configs, "config", "merge this config fragment `file` after scxcheck's own (kernel/kconfig/fragments/sub-sched.config, vm.config) (repeatable)")
	fs.StringVar(&b.pahole, "pahole", "", "use this pahole (v1.26 or newer) `binary` (default: the system's if new enough, else Debian trixie's, fetched into the cache)")
	b.registerJobs(fs)
	fs.BoolVar(&b.force, "force", false, "build even if the cache holds this kernel")
	fs.BoolVar(&b.coverage, "coverage", false, "build a coverage kernel: gcov profiling of the sched_ext code (kernel/kconfig/fragments/coverage.config, kernel/sched/build_policy.o profiled), its gcov notes kept in the cache entry for `scxcheck run --coverage` (see docs/coverage.md)")
}

// requested reports whether a source build was asked for.
func (b *buildFlags) requested() bool { return b.tree != "" || len(b.patches) > 0 }

// options turns the flags into build options.
func (b *buildFlags) options(cacheDir, mirror string, log io.Writer) (build.Options, error) {
	if b.series != "" {
		if b.tree != "" {
			return build.Options{}, usageErrorf("--series and --tree exclude each other: --series chooses Debian's sources")
		}
		if err := build.CheckSeries(b.series); err != nil {
			return build.Options{}, usageErrorf("--series: %v", err)
		}
	}
	frags := kconfig.Default()
	for _, c := range b.configs {
		f, err := kconfig.ReadFragment(c)
		if err != nil {
			return build.Options{}, badInput(fmt.Errorf("--config: %w", err))
		}
		frags = append(frags, f)
	}
	return build.Options{
		CacheDir:  cacheDir,
		Tree:      b.tree,
		Series:    b.series,
		Base:      b.base,
		Fragments: frags,
		Patches:   b.patches,
		TestPatch: !b.noTestPatch,
		Pahole:    b.pahole,
		Mirror:    mirror,
		Jobs:      b.jobs,
		Force:     b.force,
		Coverage:  b.coverage,
		Log:       func(format string, args ...any) { fmt.Fprintf(log, "scxcheck: "+format+"\n", args...) },
	}, nil
}

// buildOptions returns the build options of the flags, in the cache
// directory they name.
func (k *kernelFlags) buildOptions(log io.Writer) (build.Options, error) {
	dir, err := k.cacheDir()
	if err != nil {
		return build.Options{}, err
	}
	return k.build.options(dir, k.mirror, log)
}

// registerBench registers the flags of a benchmark that builds kernels:
// the cache, the mirror, the tree, pahole and make's jobs.
func (k *kernelFlags) registerBench(fs *flag.FlagSet) {
	fs.StringVar(&k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&k.mirror, "mirror", "", "Debian mirror `URL` for sources and pahole (default: the one in the machine's apt sources)")
	fs.StringVar(&k.build.tree, "tree", "", "kernel source `directory` (default: Debian's linux-source)")
	fs.StringVar(&k.build.pahole, "pahole", "", "use this pahole `binary` (v1.26 or newer)")
	k.build.registerJobs(fs)
}

// buildKernel builds (or takes from the cache) the kernel the flags
// describe.
func (k *kernelFlags) buildKernel(ctx context.Context, log io.Writer) (*build.Result, error) {
	opts, err := k.buildOptions(log)
	if err != nil {
		return nil, err
	}
	res, err := build.Build(ctx, opts)
	if err != nil {
		return nil, buildError(err)
	}
	return res, nil
}

// buildError maps a build's error to an exit code: what the user passed
// (tree, patches, fragments, a config that loses what it asks for, a kernel
// that does not compile) is bad input; the rest is infrastructure.
func buildError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return infraError(err)
	case errors.Is(err, build.ErrNotTree), errors.Is(err, build.ErrPatch), errors.Is(err, build.ErrFragment),
		errors.Is(err, kernel.ErrConfig), errors.Is(err, build.ErrBuild):
		return badInput(err)
	}
	return infraError(err)
}

func cmdKernelBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var k kernelFlags
	fs := newFlagSet("kernel build", `Builds a kernel for scxcheck from source and prints the path of its image (the ELF
vmlinux, which the VM boots through PVH), so that
  scxcheck run --kernel $(scxcheck kernel build)
works. Without --tree it builds Debian's linux-source of the default kernel's series
(`+build.DefaultSeries+`), or of --series, fetched into the cache with a private apt
configuration (from Debian unstable, else trixie-backports).

The config is the base (tinyconfig by default) with scxcheck's fragments and any
--config merged onto it, then olddefconfig; a requested symbol that does not
survive is an error naming the dependency that is off (exit 2). Patches are
applied to a copy of the tree, never to the tree itself: the --patch ones, then
scxcheck's test-only patch for the tree's series (the sched_ext module parameter
test_self_sub_dispatch, off by default, that the recursion specs need; never for
a production kernel). --no-test-patch leaves it out, as a tree of a series it
has no version for, or one it does not apply to, needs (exit 2 otherwise). The
build runs in a build directory in the cache that later builds of the same tree
reuse; the result is cached by tree content, patches (the test-only one too),
config, compiler and pahole, so an unchanged build returns at once. pahole v1.26 or newer is needed: when the
system's is older, Debian trixie's is fetched into the cache and used.`, stdout)
	fs.StringVar(&k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&k.mirror, "mirror", "", "Debian mirror `URL` for sources and pahole (default: the one in the machine's apt sources)")
	k.build.registerAll(fs)
	k.build.registerSeries(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := k.buildKernel(ctx, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, res.Image.Boot)
	return nil
}

// Targets of the build benchmark on a 2-core machine.
const (
	targetFullBuild   = 8 * time.Minute
	targetIncremental = 70 * time.Second
	targetCacheHit    = 5 * time.Second
)

// benchTouched is the file the incremental build benchmark touches.
const benchTouched = "kernel/sched/ext/ext.c"

func cmdBenchBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var k kernelFlags
	fs := newFlagSet("bench build", `Times three builds of scxcheck's own config (tinyconfig + kernel/kconfig/fragments/*.config) from
Debian's linux-source (or --tree): a full build in a fresh build directory, an
incremental rebuild after touching `+benchTouched+`, and a build that the cache
answers, without scxcheck's test-only patch (it changes that file). Prints the
three times against their targets.`, stdout)
	k.registerBench(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := k.cacheDir()
	if err != nil {
		return err
	}
	opts, err := k.buildOptions(stderr)
	if err != nil {
		return err
	}
	// Without the test-only patch: it changes benchTouched, and a patched
	// file whose content is what the last build made keeps that build's
	// time, so the incremental build would compile nothing.
	opts.TestPatch = false
	logf := opts.Log

	loadStart := loadAverage()
	// Full: a fresh build directory of its own, so the user's stays.
	opts.WorkDir = filepath.Join(dir, "build", "bench")
	if err := os.RemoveAll(opts.WorkDir); err != nil {
		return infraError(err)
	}
	opts.Force = true
	logf("bench: full build in %s", opts.WorkDir)
	full, err := build.Build(ctx, opts)
	if err != nil {
		return buildError(err)
	}

	// Incremental: the same build directory after touching one file.
	touched := filepath.Join(full.Tree.Dir, benchTouched)
	now := time.Now()
	if err := os.Chtimes(touched, now, now); err != nil {
		return infraError(fmt.Errorf("touch %s: %w", touched, err))
	}
	logf("bench: incremental build after touching %s", touched)
	incr, err := build.Build(ctx, opts)
	if err != nil {
		return buildError(err)
	}

	// Cache hit: nothing changed.
	opts.Force = false
	logf("bench: build again, unchanged")
	hit, err := build.Build(ctx, opts)
	if err != nil {
		return buildError(err)
	}
	if !hit.Cached {
		return infraError(fmt.Errorf("the unchanged build was not answered from the cache (entry %s)", hit.Entry))
	}
	os.RemoveAll(opts.WorkDir)

	what := full.Tree.Dir
	if full.Tree.Origin != "" {
		what = full.Tree.Origin
	}
	fmt.Fprintf(stdout, "build benchmark: kernel %s from %s, scxcheck's config, make -j%d:\n", full.Tree.Version, what, jobs(opts.Jobs))
	fmt.Fprintf(stdout, "  full build             %8s  (target ≤ %s: %s)  %s\n", secs(full.Elapsed), targetFullBuild, verdict(full.Elapsed <= targetFullBuild), breakdown(full))
	fmt.Fprintf(stdout, "  incremental (ext.c)    %8s  (target ≤ %s: %s)  %s\n", secs(incr.Elapsed), targetIncremental, verdict(incr.Elapsed <= targetIncremental), breakdown(incr))
	fmt.Fprintf(stdout, "  cache hit              %8s  (target ≤ %s: %s)\n", secs(hit.Elapsed), targetCacheHit, verdict(hit.Elapsed <= targetCacheHit))
	fmt.Fprintf(stdout, "  image                  %s\n", hit.Image.Boot)
	fmt.Fprintf(stdout, "  load average           %s at the start, %s at the end (other work on the machine slows the builds)\n", loadStart, loadAverage())
	return nil
}

// breakdown says where a build's time went.
func breakdown(r *build.Result) string {
	return fmt.Sprintf("[copy %s, configure %s, make %s]", secs(r.Copy), secs(r.Configure), secs(r.Make))
}

// loadAverage returns the 1-minute load average, "?" if unknown.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

func jobs(j int) int {
	if j <= 0 {
		return runtime.NumCPU()
	}
	return j
}

func secs(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }

// saveBuildArtifacts copies what a kernel build leaves for a reviewer (its
// log, and the .config when it got that far) into dir/kernel/: from the
// cache entry of a built or cached kernel, or from the build directory of
// one that failed (err).
func saveBuildArtifacts(dir string, res *build.Result, err error) error {
	var files [][2]string // source, name in dir/kernel
	switch failed := build.FailedLog(err); {
	case res != nil:
		files = [][2]string{{res.Log, "build.log"}, {filepath.Join(res.Entry, "config"), "config"}}
	case failed != "":
		files = [][2]string{{failed, "build.log"}, {filepath.Join(filepath.Dir(failed), "obj", ".config"), "config"}}
	default:
		return nil
	}
	out := filepath.Join(dir, "kernel")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("save kernel build artifacts: %w", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f[0])
		if errors.Is(err, os.ErrNotExist) && f[1] == "config" {
			continue // the build failed before configuring
		}
		if err != nil {
			return fmt.Errorf("save kernel build artifacts: %w", err)
		}
		if err := os.WriteFile(filepath.Join(out, f[1]), data, 0o644); err != nil {
			return fmt.Errorf("save kernel build artifacts: %w", err)
		}
	}
	return nil
}

func cmdKernelPrune(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		k      kernelFlags
		keep   int
		dryRun bool
	)
	fs := newFlagSet("kernel prune", `Frees space in the kernel-build cache (built kernels are ~20 MB each, a tree's
build directory ~1-3 GB). Removes the built kernels beyond the --keep most
recently built or used, incomplete entries, and the build directories of trees
that no longer exist; a build directory a running build holds is kept. Default
kernels fetched from Debian, the Debian source tree and bisect clones are left
alone. Lists every item with its size and what happens to it.`, stdout)
	fs.StringVar(&k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.IntVar(&keep, "keep", 5, "keep the `N` most recently used built kernels")
	fs.BoolVar(&dryRun, "dry-run", false, "list what would be removed, remove nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if keep < 0 {
		return usageErrorf("kernel prune: --keep must be 0 or more, not %d", keep)
	}
	dir, err := k.cacheDir()
	if err != nil {
		return err
	}
	items, err := build.Prune(ctx, build.PruneOptions{CacheDir: dir, Keep: keep, DryRun: dryRun})
	var total, freed int64
	for _, it := range items {
		total += it.Size
		verb := "keep"
		if it.Remove {
			verb = "remove"
			if dryRun {
				verb = "would remove"
			}
			freed += it.Size
		}
		used := "-"
		if !it.Used.IsZero() {
			used = it.Used.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(stdout, "%-12s %-9s %8s  %-16s  %s", verb, it.Kind, humanBytes(it.Size), used, it.Dir)
		if it.What != "" {
			fmt.Fprintf(stdout, "  (%s)", it.What)
		}
		if it.Why != "" {
			fmt.Fprintf(stdout, ": %s", it.Why)
		}
		fmt.Fprintln(stdout)
	}
	if err != nil {
		return infraError(err)
	}
	what := "freed"
	if dryRun {
		what = "would free"
	}
	fmt.Fprintf(stdout, "kernel build cache %s: %d items, %s; %s %s\n", filepath.Join(dir, "build"), len(items), humanBytes(total), what, humanBytes(freed))
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
