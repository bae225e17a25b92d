package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/coverage/diff"
	"github.com/scxcheck/scxcheck/coverage/gcov"
	"github.com/scxcheck/scxcheck/coverage/specdata"
	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/internal/junit"
	"github.com/scxcheck/scxcheck/kernel/build"
)

// `scxcheck run --coverage` (docs/coverage.md): the kernel is a coverage
// kernel (kernel/build's Options.Coverage, built from --tree, or a --kernel
// image of such a build); the harness keeps every spec's gcov data
// (harness.Coverage, coverage/specdata) under <out>/gcda; once the specs
// are done, the parent process runs gcov on each spec's data, merges them
// keyed by spec text, measures the changed lines and writes the report
// into <out>.

// coverageFlags are run's coverage flags; ci/gate passes them through.
type coverageFlags struct {
	on      bool
	changed listFlag // --changed-lines
	base    string   // --coverage-base
	min     string   // --min-changed-coverage, a percentage; "" = none
	out     string   // --coverage-out
}

func (c *coverageFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.on, "coverage", false, "measure which lines of the sched_ext code each spec executes (gcov): needs a coverage kernel, built with --tree (as `scxcheck kernel build --coverage` does) or a --kernel image of one; see docs/coverage.md")
	fs.Var(&c.changed, "changed-lines", "with --coverage, the changed lines are those this `patch` (file or mbox) adds, located by their content in the kernel's sources (a patch the tree already contains) (repeatable)")
	fs.StringVar(&c.base, "coverage-base", "", "with --coverage, the changed lines are those the kernel tree (a git checkout) changes since this `revision`")
	fs.StringVar(&c.min, "min-changed-coverage", "", "with --coverage, fail (exit 1) when less than this `percentage` of the executable changed lines ran, listing those that did not")
	fs.StringVar(&c.out, "coverage-out", "", "with --coverage, write the report into this `directory` (default <artifacts>/coverage, else ./coverage)")
}

// check refuses what the coverage flags cannot do, before anything slow;
// it returns the threshold (a fraction, -1 for none).
func (c *coverageFlags) check(k *kernelFlags, repeat int) (float64, error) {
	if !c.on {
		for name, set := range map[string]bool{"changed-lines": len(c.changed) > 0, "coverage-base": c.base != "",
			"min-changed-coverage": c.min != "", "coverage-out": c.out != ""} {
			if set {
				return 0, usageErrorf("--%s needs --coverage", name)
			}
		}
		return -1, nil
	}
	switch {
	case repeat > 1:
		return 0, usageErrorf("--coverage and --repeat exclude each other: measure coverage in one run")
	case len(k.kernels) > 1:
		return 0, usageErrorf("--coverage measures one kernel: give --kernel once, or --tree")
	case len(c.changed) > 0 && c.base != "":
		return 0, usageErrorf("--changed-lines and --coverage-base exclude each other: the changed lines come from one")
	case c.base != "" && k.build.tree == "" && k.kernel == "":
		return 0, usageErrorf("--coverage-base needs the kernel's --tree (a git checkout)")
	}
	if c.min == "" {
		return -1, nil
	}
	pct, err := strconv.ParseFloat(strings.TrimSuffix(c.min, "%"), 64)
	if err != nil || pct < 0 || pct > 100 {
		return 0, usageErrorf("--min-changed-coverage %q: want a percentage from 0 to 100", c.min)
	}
	return pct / 100, nil
}

// coverageRun is the coverage of one run.
type coverageRun struct {
	kernel  *build.Coverage
	out     string // the report's directory; the per-spec data in out/gcda
	min     float64
	changes *coverage.Changes // nil: no changed lines asked for
	from    string            // where the changes came from, for the summary
	sources fs.FS             // the compiled sources over the tree
}

// gcdaDir is where the per-spec data goes in the report's directory.
func (r *coverageRun) gcdaDir() string { return filepath.Join(r.out, "gcda") }

// start prepares the coverage of a run on the kernel t: its gcov data
// (a kernel without is bad input, saying what to build), the report's
// directory and, in the parent process, the changed lines (so that a bad
// patch or revision is refused before the specs run). The parent empties
// the report's directory and sets --coverage-out for its children.
func (c *coverageFlags) start(ctx context.Context, t target, min float64, artifacts string, parent bool, fs *flag.FlagSet, log io.Writer) (*coverageRun, error) {
	kc := (*build.Coverage)(nil)
	if t.built != nil {
		kc = t.built.Coverage
	}
	if kc == nil {
		var err error
		if kc, err = build.OpenCoverage(t.img.Boot); err != nil {
			if errors.Is(err, build.ErrNoCoverage) {
				return nil, badInput(err)
			}
			return nil, infraError(err)
		}
	}
	r := &coverageRun{kernel: kc, min: min, out: c.out,
		sources: coverage.Overlay(os.DirFS(kc.Sources), os.DirFS(kc.Tree))}
	if r.out == "" {
		r.out = "coverage"
		if artifacts != "" {
			r.out = filepath.Join(artifacts, "coverage")
		}
	}
	abs, err := filepath.Abs(r.out)
	if err != nil {
		return nil, badInput(fmt.Errorf("--coverage-out: %w", err))
	}
	r.out = abs
	if !parent {
		return r, nil
	}
	if err := os.RemoveAll(r.out); err != nil {
		return nil, infraError(fmt.Errorf("empty the coverage directory: %w", err))
	}
	if err := os.MkdirAll(r.gcdaDir(), 0o755); err != nil {
		return nil, infraError(fmt.Errorf("coverage directory: %w", err))
	}
	fs.Set("coverage-out", r.out)
	if r.changes, r.from, err = c.changes(ctx, kc, r.sources); err != nil {
		return nil, err
	}
	if r.changes != nil {
		fmt.Fprintf(log, "scxcheck: coverage: changed lines from %s: %s\n", r.from, r.changes.Stats())
	}
	return r, nil
}

// changes returns the changed lines the flags ask for, where they are in
// the kernel's compiled sources: a patch located there (--changed-lines),
// a git range of the tree moved through the patches the build applied
// (--coverage-base), or else the user's patches the build applied, moved
// through scxcheck's test-only one. nil when there are none.
func (c *coverageFlags) changes(ctx context.Context, kc *build.Coverage, sources fs.FS) (*coverage.Changes, string, error) {
	applied := func(test bool) ([]*diff.Patch, error) {
		var out []*diff.Patch
		for _, p := range kc.Patches {
			if p.Test != test {
				continue
			}
			ps, err := diff.ReadFile(p.File)
			if err != nil {
				return nil, fmt.Errorf("patch %s kept with the kernel: %w", p.Name, err)
			}
			out = append(out, ps...)
		}
		return out, nil
	}
	if len(c.changed) > 0 {
		ps, err := diff.ReadPaths(c.changed...)
		if err != nil {
			return nil, "", badInput(fmt.Errorf("--changed-lines: %w", err))
		}
		ch, err := coverage.Locate(sources, ps...)
		if err != nil {
			return nil, "", badInput(fmt.Errorf("--changed-lines: %w", err))
		}
		return ch, strings.Join(c.changed, ", ") + " (located in the kernel's sources)", nil
	}
	user, err := applied(false)
	if err != nil {
		return nil, "", infraError(err)
	}
	test, err := applied(true)
	if err != nil {
		return nil, "", infraError(err)
	}
	switch {
	case c.base != "":
		ch, err := coverage.FromGit(ctx, kc.Tree, c.base, "")
		if err != nil {
			return nil, "", badInput(fmt.Errorf("--coverage-base: %w", err))
		}
		ch.Then(append(user, test...)...)
		return ch, fmt.Sprintf("git diff %s in %s", c.base, kc.Tree), nil
	case len(user) > 0:
		ch := coverage.FromPatches(user...)
		ch.Then(test...)
		var names []string
		for _, p := range kc.Patches {
			if !p.Test {
				names = append(names, p.Name)
			}
		}
		return ch, "the patches applied: " + strings.Join(names, ", "), nil
	}
	return nil, "", nil
}

// harnessOptions returns what the harness needs to keep each spec's data;
// nil without coverage.
func (r *coverageRun) harnessOptions() *harness.Coverage {
	if r == nil {
		return nil
	}
	dirs := map[string]bool{}
	var out []string
	for _, o := range r.kernel.Objects {
		if d := filepath.Dir(o); !dirs[d] {
			dirs[d] = true
			out = append(out, d)
		}
	}
	return &harness.Coverage{BuildDir: r.kernel.ObjDir, Dirs: out, Out: r.gcdaDir()}
}

// coverageResult is what a run's coverage came to.
type coverageResult struct {
	report *coverage.Report // nil without changed lines
	merged *gcov.Merged
	files  []string // written, relative to out
}

// end finishes the coverage of a run that ended with res: the report, its
// summary line on stdout and its JUnit properties, and the run's failure
// when the changed lines ran less than --min-changed-coverage.
func (r *coverageRun) end(ctx context.Context, stdout, stderr io.Writer) ([]junit.Property, error) {
	res, err := r.finish(ctx, stderr)
	if err != nil {
		if r.min >= 0 {
			return nil, infraError(fmt.Errorf("%w: --min-changed-coverage cannot be checked", err))
		}
		fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		return nil, nil
	}
	fmt.Fprintln(stdout, res.summary(r.out))
	if err := res.belowMin(r.min); err != nil {
		return res.properties(), exitError{code: exitFail, err: err}
	}
	return res.properties(), nil
}

// finish runs gcov on every spec's data, merges them by spec and writes
// the report: lcov.info (every profiled source), summary.txt,
// changed-lines.json and an annotated page per changed file.
func (r *coverageRun) finish(ctx context.Context, log io.Writer) (*coverageResult, error) {
	step := 0
	m, err := specdata.Merge(ctx, r.gcdaDir(), r.kernel.Notes, r.kernel.SrcDir, gcov.Tool{Path: r.kernel.GCOV}, func(done, total int) {
		if done == total || done >= step+10 {
			step = done
			fmt.Fprintf(log, "scxcheck: coverage: gcov on %d of %d specs' data\n", done, total)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	if len(m.Runs()) == 0 {
		return nil, errors.New("coverage: no spec's gcov data was kept (see the lines above)")
	}
	res := &coverageResult{merged: m}
	changes := r.changes
	if changes == nil {
		changes = &coverage.Changes{}
	}
	if res.report, err = coverage.NewReport(r.sources, changes, m); err != nil {
		return nil, err
	}
	if res.files, err = res.report.WriteDir(r.out); err != nil {
		return nil, err
	}
	if err := r.writeLCOV(m); err != nil {
		return nil, err
	}
	res.files = append(res.files, "lcov.info")
	if r.changes == nil {
		res.report = nil
	}
	return res, nil
}

// writeLCOV writes lcov.info: the coverage of every profiled source, summed
// over the specs, with paths into the sources kept with the kernel, which
// genhtml reads. Sources outside the tree (generated headers) are left out.
func (r *coverageRun) writeLCOV(m *gcov.Merged) error {
	total := gcov.New()
	for p, f := range m.Total().Files {
		if !filepath.IsAbs(p) {
			total.Files[p] = f
		}
	}
	f, err := os.Create(filepath.Join(r.out, "lcov.info"))
	if err != nil {
		return fmt.Errorf("coverage: %w", err)
	}
	if err := total.WriteLCOV(f, gcov.LCOV{TestName: "scxcheck", SourceRoot: r.kernel.Sources}); err != nil {
		f.Close()
		return fmt.Errorf("coverage: %w", err)
	}
	return f.Close()
}

// summary is the run's closing coverage line.
func (res *coverageResult) summary(out string) string {
	specs := len(res.merged.Runs())
	if res.report == nil {
		lines, hit := 0, 0
		for _, f := range res.merged.Total().Files {
			l, h, _, _ := f.Summary()
			lines, hit = lines+l, hit+h
		}
		return fmt.Sprintf("coverage: %d of %d instrumented lines executed by %d specs (no changed lines given); report in %s", hit, lines, specs, out)
	}
	return fmt.Sprintf("coverage: %s, by %d specs; report in %s", res.report.Summary(), specs, out)
}

// properties are the run's JUnit properties of coverage.
func (res *coverageResult) properties() []junit.Property {
	if res.report == nil {
		return nil
	}
	return []junit.Property{
		{Name: "scxcheck.coverage.changed_ratio", Value: strconv.FormatFloat(res.report.Ratio(), 'f', 4, 64)},
		{Name: "scxcheck.coverage.changed_lines", Value: fmt.Sprintf("%d/%d", res.report.Executed, res.report.Executable)},
	}
}

// belowMin returns the failure of a run whose changed lines ran less than
// min (a fraction, -1 for no threshold), listing the lines that did not;
// nil when it is not below. A change with no executable line is not.
func (res *coverageResult) belowMin(min float64) error {
	if min < 0 || res.report == nil || res.report.Executable == 0 || res.report.Ratio() >= min {
		return nil
	}
	var b strings.Builder
	r := res.report
	fmt.Fprintf(&b, "changed-line coverage %.1f%% (%d of %d) is below --min-changed-coverage %g%%; not executed:",
		100*r.Ratio(), r.Executed, r.Executable, 100*min)
	for _, m := range r.Missed() {
		fmt.Fprintf(&b, "\n  %s", m)
		for _, f := range r.Files {
			if f.Path != m.File {
				continue
			}
			for _, l := range f.Lines {
				if l.Executable && l.Count == 0 && l.Line >= m.Start && l.Line <= m.End {
					fmt.Fprintf(&b, "\n    %6d | %s", l.Line, l.Text)
				}
			}
		}
	}
	return errors.New(b.String())
}
