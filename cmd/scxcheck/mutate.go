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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/bisect"
	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel/build"
	"github.com/scxcheck/scxcheck/mutate"
	"github.com/scxcheck/scxcheck/outcome"
)

const mutateSummary = `Mutation testing of a patch's changed lines: changes one changed line at a time
the way real bugs change code, builds the kernel with it, runs the specs that
executed that line, and reports whether any of them noticed. A surviving mutant
is a review finding: nothing checks that this line is right.

1. Coverage: the tree (--tree, default Debian's linux-source) with --patch is
   built as a coverage kernel (cached) and every spec of --label-filter runs on it
   with per-spec coverage (scxcheck run --coverage), unless --coverage-from names
   the report of such a run. The changed lines are those the patches add, or
   --changed-lines (a patch the tree already contains), or --coverage-base REV.
2. Mutants, on the changed lines some spec executed only: negate an if/while
   condition, swap < <=, > >=, == !=, drop an && / || operand, off-by-one on a
   constant bound, replace a returned value, remove a call, delete an assignment.
   A changed line no spec executes is reported: no spec can kill a mutant there.
   Specs that failed on the unmutated kernel are not run on mutants.
3. Each mutant is applied to the build's copy of the tree and built incrementally
   in the coverage kernel's build directory (a cached kernel of its own; the file
   is restored for the next), then the specs that executed its line run on it
   --runs times under the verdict rule: killed (a spec failed: assertion, exit,
   crash, hang, teardown...), survived (all passed), unknown (only infrastructure
   failed, or a spec was skipped or flaky), stillborn (did not compile; reported,
   not counted). With --runs 1 and --procs 1 a run stops at its first failing
   spec (run --fail-fast): one failure kills the mutant.

The state directory (--out) keeps every result: run the same command again to
resume an interrupted run. --budget stops cleanly with a partial report.
report.txt, report.json and HTML pages (index.html, and files/<path>.html per
file: its changed lines in context with each mutant's outcome and diff) are
written into it; the text report also goes to stdout. Score = killed / (killed + survived). See docs/mutate.md.

Exit codes: 0 the score is at least --min-score (or no --min-score; after --budget
stopped it, the partial score), 1 below it, 2 bad flags or input, 3 not scored, or
not all of it: no mutant killed or survived, the coverage run or a build failed
for another reason than the mutant, interrupted (Ctrl-C).

Example: scxcheck mutate --changed-lines seed.patch --label-filter 'distant || dispatch' --max-mutants 20`

// mutateOptions are the mutate command's flags.
type mutateOptions struct {
	k            kernelFlags
	changed      listFlag
	base         string
	coverageFrom string
	labelFilter  string
	filter       string
	max          int
	budget       time.Duration
	runs         int
	procs        int
	minScore     string
	out          string
	list         bool
}

func (o *mutateOptions) flagSet(stdout io.Writer) *flag.FlagSet {
	fs := newFlagSet("mutate", mutateSummary, stdout)
	o.k.build.registerSource(fs) // --tree, --patch, --no-test-patch
	o.k.build.registerJobs(fs)
	fs.Var(&o.changed, "changed-lines", "the changed lines are those this `patch` (file or mbox) adds, located by their content in the tree (a patch the tree already contains) (repeatable)")
	fs.StringVar(&o.base, "coverage-base", "", "the changed lines are those the --tree (a git checkout) changes since this `revision`")
	fs.StringVar(&o.coverageFrom, "coverage-from", "", "take the per-spec coverage from this `directory`, the report of an earlier 'scxcheck run --coverage' of the same kernel (its changed-lines.json), instead of running the specs for it")
	fs.StringVar(&o.labelFilter, "label-filter", "", "measure coverage with the specs matching this Ginkgo label `expression` only (mutants run the specs that executed their line among them)")
	fs.StringVar(&o.filter, "mutants", "", "run only the mutants whose id (file:line:operator) matches this `regexp`, e.g. 'ext.c:94(48|55):'")
	fs.IntVar(&o.max, "max-mutants", 0, "run at most `N` mutants, spread over the changed lines (0 = all)")
	fs.DurationVar(&o.budget, "budget", 0, "stop after this `duration` (e.g. 90m) with a partial report; run again to resume")
	fs.IntVar(&o.runs, "runs", 1, "run each mutant's specs `N` times (the verdict rule: a crash, exit or teardown failure kills at once, other failures in more than half the runs)")
	fs.IntVar(&o.procs, "procs", 1, "run the specs in `N` processes, one VM each, as 'scxcheck run --procs' does")
	fs.StringVar(&o.minScore, "min-score", "", "exit 1 when the mutation score is below this `percentage` (default: report only)")
	fs.BoolVar(&o.list, "list", false, "print the mutants that would run (id, description, the specs of their line) and the changed lines no spec executes, then stop: no mutant is built")
	fs.StringVar(&o.out, "out", "", "state and report `directory` (default: under the cache, named by the inputs, so that the same command resumes)")
	fs.StringVar(&o.k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&o.k.mirror, "mirror", "", "Debian mirror `URL` for Debian's sources and pahole (default: the one in the machine's apt sources)")
	fs.StringVar(&o.k.accel, "accel", "auto", "QEMU accelerator: auto, kvm or tcg")
	fs.StringVar(&o.k.tcg, "tcg-threads", "single", "TCG threading: single or multi")
	fs.StringVar(&o.k.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	return fs
}

// check refuses bad flags before anything slow; it returns the minimum
// score (a fraction, -1 for none) and the mutant filter.
func (o *mutateOptions) check() (float64, *regexp.Regexp, error) {
	switch {
	case o.runs < 1:
		return 0, nil, usageErrorf("mutate: --runs must be at least 1, not %d", o.runs)
	case o.max < 0:
		return 0, nil, usageErrorf("mutate: --max-mutants must be 0 (all) or more, not %d", o.max)
	case o.budget < 0:
		return 0, nil, usageErrorf("mutate: --budget must not be negative, not %s", o.budget)
	case o.procs < 1 || o.procs > maxProcs:
		return 0, nil, usageErrorf("mutate: --procs must be 1 to %d, not %d", maxProcs, o.procs)
	case len(o.changed) > 0 && o.base != "":
		return 0, nil, usageErrorf("mutate: --changed-lines and --coverage-base exclude each other: the changed lines come from one")
	case o.coverageFrom != "" && (len(o.changed) > 0 || o.base != ""):
		return 0, nil, usageErrorf("mutate: --coverage-from takes the changed lines from that report: leave out --changed-lines and --coverage-base")
	case len(o.k.build.patches) == 0 && len(o.changed) == 0 && o.base == "" && o.coverageFrom == "":
		return 0, nil, usageErrorf("mutate: which lines? give the patch under test with --patch (applied) or --changed-lines (in the tree already), or --coverage-base REV, or --coverage-from DIR")
	case o.base != "" && o.k.build.tree == "":
		return 0, nil, usageErrorf("mutate: --coverage-base needs the kernel's --tree (a git checkout)")
	}
	var filter *regexp.Regexp
	if o.filter != "" {
		var err error
		if filter, err = regexp.Compile(o.filter); err != nil {
			return 0, nil, usageErrorf("mutate: --mutants %q: %v", o.filter, err)
		}
	}
	if err := checkLabelFilter(o.labelFilter); err != nil {
		return 0, nil, err
	}
	if _, err := o.k.accelerator(); err != nil {
		return 0, nil, err
	}
	if _, err := o.k.tcgThreads(); err != nil {
		return 0, nil, err
	}
	if o.k.build.tree != "" {
		if _, err := build.OpenTree(o.k.build.tree); err != nil {
			return 0, nil, badInput(err)
		}
	}
	if o.coverageFrom != "" {
		if _, err := os.Stat(filepath.Join(o.coverageFrom, "changed-lines.json")); err != nil {
			return 0, nil, badInput(fmt.Errorf("mutate: --coverage-from %s: no changed-lines.json in it (the report directory of 'scxcheck run --coverage' with changed lines): %v", o.coverageFrom, errors.Unwrap(err)))
		}
	}
	for _, p := range o.changed {
		if _, err := os.Stat(p); err != nil {
			return 0, nil, badInput(fmt.Errorf("mutate: --changed-lines %s: %v", p, errors.Unwrap(err)))
		}
	}
	if o.minScore == "" {
		return -1, filter, nil
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(o.minScore, "%"), 64)
	if err != nil || pct < 0 || pct > 100 {
		return 0, nil, usageErrorf("mutate: --min-score %q: want a percentage from 0 to 100", o.minScore)
	}
	return pct / 100, filter, nil
}

func cmdMutate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o mutateOptions
	fs := o.flagSet(stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	began := time.Now()
	min, filter, err := o.check()
	if err != nil {
		return err
	}
	if err := o.k.checkQEMU(); err != nil {
		return err
	}
	cache, err := o.k.cacheDir()
	if err != nil {
		return err
	}
	opts, err := o.k.build.options(cache, o.k.mirror, stderr)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}

	// The coverage kernel: built once (or taken from the cache); every
	// mutant is built the same way with its diff as one more patch.
	opts.Coverage = true
	res, err := build.Build(ctx, opts)
	if err != nil {
		return buildError(err)
	}
	kc := res.Coverage

	inputs := mutateInputs{Kernel: filepath.Base(res.Entry), Changed: absAll(o.changed), Base: o.base,
		CoverageFrom: absPath(o.coverageFrom), LabelFilter: o.labelFilter}
	state := o.out
	if state == "" {
		state = filepath.Join(cache, "mutate", inputs.key()[:16])
	}
	if err := inputs.claim(state); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "scxcheck mutate: state, logs and report in %s\n", state)

	covCtx := ctx
	if o.budget > 0 {
		var cancel context.CancelFunc
		covCtx, cancel = context.WithDeadline(ctx, began.Add(o.budget))
		defer cancel()
	}
	lines, failing, err := o.coverage(covCtx, self, res.Image.Boot, state, stderr)
	if err != nil {
		if ctx.Err() == nil && covCtx.Err() != nil {
			return infraError(fmt.Errorf("mutate: --budget %s used up by the coverage run, before any mutant: give more", o.budget))
		}
		return err
	}
	sources := coverage.Overlay(os.DirFS(kc.Sources), os.DirFS(kc.Tree))
	sel, err := mutate.Select(sources, lines, mutate.SelectOptions{Max: o.max, Filter: filter, Failing: failing})
	if err != nil {
		return infraError(err)
	}
	if data, err := json.MarshalIndent(sel, "", "  "); err == nil {
		os.WriteFile(filepath.Join(state, "selection.json"), append(data, '\n'), 0o644)
	}
	fmt.Fprintf(stderr, "scxcheck mutate: %d mutant(s) selected of %d on the executed changed lines; %d changed line(s) no spec executes\n",
		len(sel.Mutants), sel.Generated, len(sel.NotExecuted))

	if o.list {
		listMutants(stdout, sel)
		return nil
	}
	var patches []string
	for _, p := range kc.Patches {
		patches = append(patches, p.File)
	}
	b := &mutantBuilder{opts: opts, patches: patches, dir: filepath.Join(state, "patches"), stderr: stderr}
	t := &mutantTester{self: self, args: o.runArgs(), stderr: stderr}
	if o.runs == 1 && o.procs == 1 {
		// One failing spec kills the mutant: the rest need not run.
		t.args = append(t.args, "--fail-fast")
	}
	rep, runErr := mutate.Run(ctx, mutate.Config{StateDir: state, Runs: o.runs, Budget: o.budget, Started: began, Log: stderr}, sel, b, t)
	if rep == nil {
		return infraError(runErr)
	}
	written, pagesErr := rep.WritePages(state, sources, lines)
	if pagesErr != nil {
		fmt.Fprintf(stderr, "scxcheck mutate: %v\n", pagesErr)
	}
	var text strings.Builder
	rep.WriteText(&text)
	if pagesErr == nil {
		text.WriteString(mutate.PagesNote(state, written))
	}
	fmt.Fprint(stdout, text.String())
	if err := fsutil.WriteFileAtomic(filepath.Join(state, "report.txt"), []byte(text.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "scxcheck mutate: %v\n", err)
	}
	var js strings.Builder
	rep.WriteJSON(&js)
	if err := fsutil.WriteFileAtomic(filepath.Join(state, "report.json"), []byte(js.String()), 0o644); err != nil {
		fmt.Fprintf(stderr, "scxcheck mutate: %v\n", err)
	}
	fmt.Fprintf(stderr, "scxcheck mutate: report in %s\n", filepath.Join(state, "report.txt"))
	switch {
	case runErr != nil:
		return infraError(fmt.Errorf("mutate stopped: %w (partial report above; run again to resume)", runErr))
	case rep.Stopped == "interrupted":
		return infraError(errors.New("mutate: interrupted (partial report above; run the same command again to resume)"))
	case !rep.Scored():
		return infraError(errors.New("mutate: no mutant was killed or survived: nothing measured"))
	case min >= 0 && rep.Score() < min:
		return exitError{code: exitFail, err: fmt.Errorf("mutation score %.1f%% is below --min-score %g%%", 100*rep.Score(), 100*min)}
	}
	return nil
}

// listMutants prints a selection for --list.
func listMutants(w io.Writer, sel *mutate.Selection) {
	for _, m := range sel.Mutants {
		fmt.Fprintf(w, "%s  %s  (%d spec(s))\n", m.ID, m.Description, len(m.Specs))
	}
	for _, l := range sel.NotExecuted {
		fmt.Fprintf(w, "%s  not executed: no spec can kill a mutant here | %s\n", l, strings.TrimSpace(l.Text))
	}
}

// runArgs are the flags every `scxcheck run` (the coverage run's, each
// mutant's) gets.
func (o *mutateOptions) runArgs() []string {
	args := []string{"--accel=" + o.k.accel, "--tcg-threads=" + o.k.tcg, "--qemu=" + o.k.qemu, "--procs=" + strconv.Itoa(o.procs)}
	if o.k.cache != "" {
		args = append(args, "--cache="+o.k.cache)
	}
	return args
}

// coverage returns the changed lines with the specs that executed each,
// and the specs that failed without a mutant: from --coverage-from, from
// an earlier mutate of the same inputs in the state directory, or from a
// coverage run of the kernel now.
func (o *mutateOptions) coverage(ctx context.Context, self, kernel, state string, stderr io.Writer) ([]mutate.Line, map[string]string, error) {
	if o.coverageFrom != "" {
		lines, err := mutate.ReadChangedLines(filepath.Join(o.coverageFrom, "changed-lines.json"))
		if err != nil {
			return nil, nil, badInput(err)
		}
		fmt.Fprintf(stderr, "scxcheck mutate: coverage from %s (specs failing without a mutant unknown: all are run)\n", o.coverageFrom)
		return lines, nil, nil
	}
	covDir, runDir := filepath.Join(state, "coverage"), filepath.Join(state, "coverage-run")
	report := filepath.Join(runDir, "run-1.json")
	changed := filepath.Join(covDir, "changed-lines.json")
	if _, err := os.Stat(changed); err == nil {
		fmt.Fprintf(stderr, "scxcheck mutate: coverage from an earlier run in %s\n", covDir)
	} else {
		args := []string{self, "run", "--kernel=" + kernel, "--coverage", "--coverage-out=" + covDir,
			"--artifacts=" + filepath.Join(runDir, "artifacts")}
		args = append(args, o.runArgs()...)
		if o.labelFilter != "" {
			args = append(args, "--label-filter="+o.labelFilter)
		}
		for _, p := range o.changed {
			args = append(args, "--changed-lines="+absPath(p))
		}
		if o.base != "" {
			args = append(args, "--coverage-base="+o.base)
		}
		log, err := os.Create(filepath.Join(state, "coverage-run.log"))
		if err != nil {
			return nil, nil, infraError(err)
		}
		defer log.Close()
		fmt.Fprintf(stderr, "scxcheck mutate: measuring which spec executes which changed line: %s (log %s)\n", strings.Join(args[1:], " "), log.Name())
		runs, err := runner.Repeat(ctx, runner.Config{Command: args, Runs: 1, Dir: runDir, Stdout: log, Stderr: io.MultiWriter(log, stderr)})
		if err != nil {
			return nil, nil, infraError(fmt.Errorf("coverage run: %w", err))
		}
		if r := runs[0]; !r.Complete() {
			err := fmt.Errorf("the coverage run did not test the kernel (exit %d%s; log %s)", r.ExitCode, strings.TrimPrefix(" "+r.Err, " "), log.Name())
			if r.ExitCode == outcome.ExitUsage {
				return nil, nil, badInput(err)
			}
			return nil, nil, infraError(err)
		}
		if _, err := os.Stat(changed); err != nil {
			return nil, nil, infraError(fmt.Errorf("the coverage run wrote no changed lines (no patch, --changed-lines or --coverage-base?): %v (log %s)", errors.Unwrap(err), log.Name()))
		}
	}
	lines, err := mutate.ReadChangedLines(changed)
	if err != nil {
		return nil, nil, infraError(err)
	}
	specs, err := runner.ReadReport(report)
	if err != nil {
		return nil, nil, infraError(fmt.Errorf("the coverage run's report: %w", err))
	}
	failing := map[string]string{}
	for _, s := range specs {
		if s.Failed() && s.Class != outcome.Infra {
			failing[s.Text] = fmt.Sprintf("failed on the unmutated kernel [%s]: %s", s.Class, firstLineOf(s.Failure))
		}
	}
	return lines, failing, nil
}

// mutateInputs are what a state directory's results depend on: another
// mutate with other inputs must not take them.
type mutateInputs struct {
	Kernel       string   `json:"coverage_kernel"` // the cache entry
	Changed      []string `json:"changed_lines,omitempty"`
	Base         string   `json:"coverage_base,omitempty"`
	CoverageFrom string   `json:"coverage_from,omitempty"`
	LabelFilter  string   `json:"label_filter,omitempty"`
}

func (in mutateInputs) key() string {
	data, _ := json.Marshal(in)
	return fsutil.HashBytes(data)
}

// claim makes dir the state directory of these inputs: new, or one of
// the same inputs (resumed); one of other inputs is bad input.
func (in mutateInputs) claim(dir string) error {
	path := filepath.Join(dir, "inputs.json")
	data, _ := json.MarshalIndent(in, "", "  ")
	data = append(data, '\n')
	if old, err := os.ReadFile(path); err == nil {
		if string(old) != string(data) {
			return badInput(fmt.Errorf("mutate: --out %s holds a mutate run of other inputs (%s): give another --out, or remove it", dir, path))
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return infraError(fmt.Errorf("mutate: state directory: %w", err))
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return infraError(fmt.Errorf("mutate: state directory: %w", err))
	}
	return nil
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func absAll(ps []string) []string {
	var out []string
	for _, p := range ps {
		out = append(out, absPath(p))
	}
	return out
}

// mutantBuilder builds a mutant with package kernel/build: the coverage
// kernel's tree and patches (scxcheck's test-only one among them, as
// applied to it) and the mutant's diff last, in the same build directory
// as the coverage kernel, whose copy of the tree the build restores
// before applying the patches of the next.
type mutantBuilder struct {
	opts    build.Options
	patches []string // the coverage kernel's, in order
	dir     string   // where the mutants' patch files go
	stderr  io.Writer
}

// idFile turns a mutant's id into a file name.
var idFile = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (b *mutantBuilder) Build(ctx context.Context, m mutate.Mutant, log io.Writer) (mutate.Kernel, error) {
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return mutate.Kernel{}, err
	}
	patch := filepath.Join(b.dir, "mutant-"+idFile.ReplaceAllString(m.ID, "_")+".patch")
	if err := os.WriteFile(patch, []byte(m.Diff), 0o644); err != nil {
		return mutate.Kernel{}, err
	}
	o := b.opts
	o.Patches = append(append([]string(nil), b.patches...), patch)
	o.TestPatch = false // among the coverage kernel's patches if it had it
	o.Log = func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		fmt.Fprintln(log, line)
		fmt.Fprintf(b.stderr, "scxcheck mutate:   %s\n", line)
	}
	res, err := build.Build(ctx, o)
	switch {
	case err == nil:
		return mutate.Kernel{Image: res.Image.Boot, Cached: res.Cached}, nil
	case errors.Is(err, build.ErrBuild):
		fmt.Fprintln(log, err)
		return mutate.Kernel{}, fmt.Errorf("%w: %s", mutate.ErrStillborn, compilerError(err.Error()))
	case errors.Is(err, build.ErrPatch):
		fmt.Fprintln(log, err)
		return mutate.Kernel{}, fmt.Errorf("%w: %s", mutate.ErrNotApplied, firstLineOf(err.Error()))
	}
	return mutate.Kernel{}, err
}

// compilerError returns the first compiler error line of a failed build's
// message, else its first line.
func compilerError(msg string) string {
	for _, l := range strings.Split(msg, "\n") {
		if strings.Contains(l, "error:") {
			return strings.TrimSpace(l)
		}
	}
	return firstLineOf(msg)
}

// mutantTester runs a mutant's specs with `scxcheck run --kernel IMAGE
// --focus ...`, once per run, as bisect's runTester does (each run's
// artifacts and JSON report in the mutant's directory).
type mutantTester struct {
	self   string
	args   []string
	stderr io.Writer
}

// focusRegexp matches exactly the given spec texts: Ginkgo matches a
// focus against the suite's description, a space and the spec's text.
func focusRegexp(specs []string) string {
	quoted := make([]string, len(specs))
	for i, s := range specs {
		quoted[i] = regexp.QuoteMeta(s)
	}
	return " (?:" + strings.Join(quoted, "|") + ")$"
}

func (t *mutantTester) Test(ctx context.Context, k mutate.Kernel, specs []string, runs int, dir string) ([]runner.Run, error) {
	rt := runTester{self: t.self, args: append([]string{"--focus=" + focusRegexp(specs)}, t.args...), stderr: t.stderr, name: "mutate"}
	return rt.Test(ctx, bisect.Image{Boot: k.Image}, runs, dir, nil)
}
