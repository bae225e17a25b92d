package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/scxcheck/scxcheck/bisect"
	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel/build"
)

const bisectSummary = `Finds the kernel commit that broke a spec. Tests the --bad revision (its first
failing spec and assertion become the target) and the --good one, then drives
'git bisect run' over the commits between: each step builds the commit (cached and
incremental, as 'scxcheck kernel build'), boots it and runs the chosen specs
--runs times. A commit is bad if any run fails the target assertion, good if
every run passes the spec, and skipped (git's exit 125) when it does not build,
loses a required kconfig symbol, does not boot, fails the spec differently, or
hits any infrastructure error. Each commit gets scxcheck's test-only kernel patch
for its series, as in 'scxcheck kernel build' (a commit it does not apply to is
skipped); --no-test-patch leaves it out.

The bisection runs in a clone of the repository in scxcheck's cache (git clone
--shared): the repository's HEAD, working tree, refs and worktrees are never
touched, also on Ctrl-C. The report names the first bad commit and its subject,
the failing spec and assertion, every step (commit, verdict, runs, times), and
warns when the culprit's kernel image is identical to its parent's.

Example: scxcheck bisect --tree ~/linux --good v7.2 --bad HEAD --focus 'grandchild' --runs 3`

// bisectOptions are the bisect command's flags; the step process parses
// the same ones.
type bisectOptions struct {
	k           kernelFlags
	good, bad   string
	labelFilter string
	focus       string
	runs        int
	out         string
}

func (o *bisectOptions) flagSet(stdout io.Writer) *flag.FlagSet {
	fs := newFlagSet("bisect", bisectSummary, stdout)
	o.k.build.registerAll(fs) // --tree, --patch, --config, --base, --pahole, -j, --force
	fs.StringVar(&o.good, "good", "", "a `revision` where the specs pass (required)")
	fs.StringVar(&o.bad, "bad", "", "a `revision` where a spec fails (required)")
	fs.StringVar(&o.labelFilter, "label-filter", "", "run only the specs matching this Ginkgo label `expression`")
	fs.StringVar(&o.focus, "focus", "", "run only the specs whose text matches this `regexp`")
	fs.IntVar(&o.runs, "runs", 1, "test each commit `N` times; one failing run makes it bad")
	fs.StringVar(&o.out, "out", "", "write the state, the runs' logs and report.{txt,json} into this `directory` (default: under the cache)")
	fs.StringVar(&o.k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&o.k.mirror, "mirror", "", "Debian mirror `URL` for pahole (default: the one in the machine's apt sources)")
	fs.StringVar(&o.k.accel, "accel", "auto", "QEMU accelerator: auto, kvm or tcg")
	fs.StringVar(&o.k.tcg, "tcg-threads", "single", "TCG threading: single or multi")
	fs.StringVar(&o.k.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	return fs
}

// bisectRunFlags are the flags each `scxcheck run` of a step gets; with
// --coverage (coverage kernels) each run writes its coverage report into
// its artifacts (run-<i>/coverage/).
var bisectRunFlags = map[string]bool{"label-filter": true, "focus": true, "accel": true, "tcg-threads": true, "qemu": true, "coverage": true}

func (o *bisectOptions) builderTester(fs *flag.FlagSet, stderr io.Writer) (bisect.Builder, bisect.Tester, error) {
	cache, err := o.k.cacheDir()
	if err != nil {
		return nil, nil, err
	}
	opts, err := o.k.build.options(cache, o.k.mirror, stderr)
	if err != nil {
		return nil, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, nil, infraError(err)
	}
	var args []string
	fs.Visit(func(f *flag.Flag) {
		if bisectRunFlags[f.Name] {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return treeBuilder{opts: opts}, runTester{self: self, args: args, stderr: stderr}, nil
}

func cmdBisect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o bisectOptions
	fs := o.flagSet(stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case o.k.build.tree == "":
		return usageErrorf("bisect: --tree DIR is required (a git repository of a kernel tree)")
	case o.good == "" || o.bad == "":
		return usageErrorf("bisect: --good REV and --bad REV are required")
	case o.runs < 1:
		return usageErrorf("bisect: --runs must be at least 1, not %d", o.runs)
	}
	if _, err := o.k.accelerator(); err != nil {
		return err
	}
	if _, err := o.k.tcgThreads(); err != nil {
		return err
	}
	if err := checkLabelFilter(o.labelFilter); err != nil {
		return err
	}
	if err := bisect.Check(ctx, o.k.build.tree, o.good, o.bad); err != nil {
		return badInput(err)
	}
	if err := o.k.checkQEMU(); err != nil {
		return err
	}
	b, t, err := o.builderTester(fs, stderr)
	if err != nil {
		return err
	}
	cache, _ := o.k.cacheDir()
	state := o.out
	if state == "" {
		state = filepath.Join(cache, "bisect", "runs", time.Now().Format("20060102-150405"))
	}
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	fmt.Fprintf(stderr, "scxcheck bisect: state and logs in %s\n", state)
	rep, err := bisect.Run(ctx, bisect.Config{
		Tree: o.k.build.tree, Good: o.good, Bad: o.bad, Runs: o.runs,
		CloneDir:    filepath.Join(cache, "bisect", "clones"),
		StateDir:    state,
		StepCommand: []string{self, "bisect-step"},
		Args:        args,
		Log:         stderr,
	}, b, t)
	if rep != nil {
		text := rep.String()
		fmt.Fprint(stdout, text)
		os.WriteFile(filepath.Join(state, "report.txt"), []byte(text), 0o644)
		j, _ := json.MarshalIndent(rep, "", "  ")
		os.WriteFile(filepath.Join(state, "report.json"), append(j, '\n'), 0o644)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bisect.ErrInput):
		return badInput(err)
	}
	return infraError(err)
}

// cmdBisectStep is `scxcheck bisect-step --state DIR`, which git bisect run
// starts for each commit: its exit code is git's (0 good, 1 bad, 125 skip,
// 128 abort).
func cmdBisectStep(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sfs := flag.NewFlagSet("bisect-step", flag.ContinueOnError)
	sfs.SetOutput(stderr)
	dir := sfs.String("state", "", "state directory")
	if err := sfs.Parse(args); err != nil || *dir == "" {
		return exitError{code: bisect.ExitAbort, err: errors.New("bisect-step: --state DIR is required (this command is run by scxcheck bisect)")}
	}
	orig, cwd, err := bisect.StepArgs(*dir)
	if err != nil {
		return exitError{code: bisect.ExitAbort, err: err}
	}
	if err := os.Chdir(cwd); err != nil { // relative --patch and --config paths
		return exitError{code: bisect.ExitAbort, err: err}
	}
	var o bisectOptions
	fs := o.flagSet(io.Discard)
	if err := fs.Parse(orig); err != nil {
		return exitError{code: bisect.ExitAbort, err: err}
	}
	b, t, err := o.builderTester(fs, stderr)
	if err != nil {
		return exitError{code: bisect.ExitAbort, err: err}
	}
	if code := bisect.RunStep(ctx, *dir, b, t); code != 0 {
		return exitError{code: code}
	}
	return nil
}

// treeBuilder builds a commit with package kernel/build: scxcheck's
// fragments, the user's patches and config, cached by content, built
// incrementally in the same build directory for every commit of the clone.
type treeBuilder struct{ opts build.Options }

func (b treeBuilder) Build(ctx context.Context, dir string) (bisect.Image, error) {
	o := b.opts
	o.Tree = dir
	res, err := build.Build(ctx, o)
	if err != nil {
		return bisect.Image{}, err
	}
	img := res.Image
	elf := img.Vmlinux
	if elf == "" {
		elf = img.Boot
	}
	d, err := bisect.Digest(elf)
	if err != nil {
		return bisect.Image{}, fmt.Errorf("digest of %s: %w", elf, err)
	}
	return bisect.Image{Boot: img.Boot, Config: img.Config, Digest: d, Cached: res.Cached}, nil
}

// runTester tests an image with `scxcheck run --kernel IMAGE`, once per run
// (internal/runner), keeping each run's artifacts under the step's log
// directory.
type runTester struct {
	self   string
	args   []string
	stderr io.Writer
	name   string // the command, for progress lines ("" = bisect)
}

func (t runTester) Test(ctx context.Context, img bisect.Image, runs int, logDir string, stop func(runner.Run) bool) ([]runner.Run, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(logDir, "output.log"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	return runner.Repeat(ctx, runner.Config{
		Command: append([]string{t.self, "run", "--kernel=" + img.Boot}, t.args...),
		PerRun: func(i int) []string {
			return []string{"--artifacts=" + filepath.Join(logDir, fmt.Sprintf("run-%d", i))}
		},
		Runs:   runs,
		Dir:    logDir,
		Stdout: out,
		Stderr: out,
		Stop:   stop,
		Progress: func(r runner.Run) {
			failed := 0
			for _, s := range r.Specs {
				if s.Failed() {
					failed++
				}
			}
			name := t.name
			if name == "" {
				name = "bisect"
			}
			fmt.Fprintf(t.stderr, "scxcheck %s:   run %d/%d exited %d, %d spec(s) failed (%s; log %s)\n",
				name, r.Index, runs, r.ExitCode, failed, r.Duration.Round(time.Second), out.Name())
		},
	})
}
