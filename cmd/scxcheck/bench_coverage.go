package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel/build"
)

// targetCoverageOverhead is the most a coverage run may take over a plain
// run of the same specs (docs/coverage.md).
const targetCoverageOverhead = 0.30

// benchKernel is one side of the coverage benchmark.
type benchKernel struct {
	name  string // "plain", "coverage"
	built *build.Result
	// Of its run: the exit code, the counts, the specs' outcomes, the
	// run's wall time, Ginkgo's suite time and the load average when it
	// started.
	exit    int
	result  childResult
	specs   []runner.SpecResult
	wall    time.Duration
	suite   time.Duration
	loadavg string
}

func cmdBenchCoverage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		k           kernelFlags
		labelFilter string
		focus       string
		procs       int
		artifacts   string
		changed     listFlag
	)
	fs := newFlagSet("bench coverage", `Measures what --coverage costs and checks that it changes no verdict: builds
(or takes from the cache) the plain kernel and the coverage kernel of the same tree
(Debian's linux-source of the default series, or --tree, with scxcheck's test-only
patch), runs the same selection of specs on each (a child 'scxcheck run', the
coverage one with --coverage), and prints, side by side: the build times (as the
cache entries record them for kernels built earlier: each kernel's first build in
its own build directory is a full one), passed/failed/skipped, every spec whose
outcome differs, the suite time (Ginkgo's) and the run's wall time (the coverage
one includes its gcov report), and the overhead against its target (coverage
suite time at most 30% over the plain one). Exit 1 when a verdict differs or the
overhead is over its target. The load average is printed: other work on the
machine slows runs unevenly. See docs/coverage.md.`, stdout)
	k.registerBench(fs)
	k.build.registerSeries(fs)
	fs.StringVar(&k.accel, "accel", "auto", "QEMU accelerator: auto (KVM if a probe boot works, else TCG), kvm or tcg")
	fs.StringVar(&k.tcg, "tcg-threads", "single", "TCG threading: single or multi")
	fs.StringVar(&k.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	fs.StringVar(&labelFilter, "label-filter", "", "run only the specs matching this Ginkgo label `expression` (default: all suites)")
	fs.StringVar(&focus, "focus", "", "run only the specs whose text matches this `regexp`")
	fs.IntVar(&procs, "procs", 1, "run the specs in `N` processes, one VM each, in both runs")
	fs.Var(&changed, "changed-lines", "pass this `patch` to the coverage run's --changed-lines (repeatable)")
	fs.StringVar(&artifacts, "artifacts", "", "keep both runs' artifacts, JUnit files and the coverage report in this `directory` (plain/, coverage/)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if procs < 1 || procs > maxProcs {
		return usageErrorf("bench coverage: --procs must be 1 to %d, not %d", maxProcs, procs)
	}
	if err := checkLabelFilter(labelFilter); err != nil {
		return err
	}
	if err := k.checkQEMU(); err != nil {
		return err
	}
	opts, err := k.buildOptions(stderr)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	out := artifacts
	if out == "" {
		if out, err = os.MkdirTemp("", "scxcheck-bench-coverage-"); err != nil {
			return infraError(err)
		}
		defer os.RemoveAll(out)
	}

	sides := []*benchKernel{{name: "plain"}, {name: "coverage"}}
	for _, s := range sides {
		opts.Coverage = s.name == "coverage"
		if s.built, err = build.Build(ctx, opts); err != nil {
			return buildError(err)
		}
	}
	for _, s := range sides {
		sdir := filepath.Join(out, s.name)
		if err := os.MkdirAll(sdir, 0o755); err != nil {
			return infraError(err)
		}
		args := []string{"run", "--kernel=" + s.built.Image.Boot, "--accel=" + k.accel, "--tcg-threads=" + k.tcg, "--qemu=" + k.qemu,
			"--procs=" + fmt.Sprint(procs), "--artifacts=" + filepath.Join(sdir, "artifacts"), "--junit=" + filepath.Join(sdir, "junit.xml"),
			"--json-report=" + filepath.Join(sdir, "report.json")}
		if k.cache != "" {
			args = append(args, "--cache="+k.cache)
		}
		if labelFilter != "" {
			args = append(args, "--label-filter="+labelFilter)
		}
		if focus != "" {
			args = append(args, "--focus="+focus)
		}
		if s.name == "coverage" {
			args = append(args, "--coverage")
			for _, c := range changed {
				args = append(args, "--changed-lines="+c)
			}
		}
		s.loadavg = loadAverage()
		fmt.Fprintf(stderr, "scxcheck: bench: %s run on %s (load average %s)\n", s.name, s.built.Image.Boot, s.loadavg)
		began := time.Now()
		s.exit = runChild(ctx, self, args, filepath.Join(sdir, "result.json"), &prefixWriter{w: stderr, prefix: "[" + s.name + "] "})
		s.wall = time.Since(began)
		if b, err := os.ReadFile(filepath.Join(sdir, "result.json")); err == nil {
			_ = json.Unmarshal(b, &s.result)
		}
		s.specs, s.suite, _ = runner.ReadReportWithTime(filepath.Join(sdir, "report.json"))
		if ctx.Err() != nil {
			return infraError(ctx.Err())
		}
		if s.exit != exitPass && s.exit != exitFail {
			return infraError(fmt.Errorf("bench coverage: the %s run exited %d, without a verdict to compare (see above)", s.name, s.exit))
		}
	}
	return benchCoverageReport(stdout, opts, procs, labelFilter, sides[0], sides[1], loadAverage())
}

// benchCoverageReport prints the coverage benchmark's table and returns
// its verdict: exit 1 when a verdict differs or the overhead misses its
// target.
func benchCoverageReport(w io.Writer, opts build.Options, procs int, filter string, plain, cov *benchKernel, loadEnd string) error {
	what := plain.built.Tree.Dir
	if plain.built.Tree.Origin != "" {
		what = plain.built.Tree.Origin
	}
	if filter == "" {
		filter = "all suites"
	}
	pct := func(a, b time.Duration) string {
		if a <= 0 || b <= 0 {
			return "?"
		}
		return fmt.Sprintf("%+.1f%%", 100*(float64(b)/float64(a)-1))
	}
	fmt.Fprintf(w, "coverage benchmark: kernel %s from %s, make -j%d; specs: %s, --procs %d:\n", plain.built.Tree.Version, what, jobs(opts.Jobs), filter, procs)
	fmt.Fprintf(w, "  %-24s %12s %12s\n", "", "plain", "coverage")
	fmt.Fprintf(w, "  %-24s %12s %12s  %s\n", "kernel build", secs(plain.built.BuildTime), secs(cov.built.BuildTime), pct(plain.built.BuildTime, cov.built.BuildTime))
	counts := func(s *benchKernel) string {
		return fmt.Sprintf("%d/%d/%d", s.result.Passed, s.result.Failed, s.result.Skipped)
	}
	diffs := verdictDiffs(plain.specs, cov.specs)
	same := "same verdicts"
	if len(diffs) > 0 {
		same = fmt.Sprintf("%d spec(s) differ", len(diffs))
	}
	fmt.Fprintf(w, "  %-24s %12s %12s  %s\n", "passed/failed/skipped", counts(plain), counts(cov), same)
	over := 0.0
	if plain.suite > 0 {
		over = float64(cov.suite)/float64(plain.suite) - 1
	}
	fmt.Fprintf(w, "  %-24s %12s %12s  %s (target ≤ +%.0f%%: %s)\n", "suite time (Ginkgo)", secs(plain.suite), secs(cov.suite), pct(plain.suite, cov.suite),
		100*targetCoverageOverhead, verdict(plain.suite > 0 && over <= targetCoverageOverhead))
	fmt.Fprintf(w, "  %-24s %12s %12s  %s (the coverage run's includes its gcov report)\n", "run, start to exit", secs(plain.wall), secs(cov.wall), pct(plain.wall, cov.wall))
	fmt.Fprintf(w, "  %-24s %12s %12s\n", "load average at start", plain.loadavg, cov.loadavg)
	fmt.Fprintf(w, "  load average at the end %s (other work on the machine slows runs unevenly)\n", loadEnd)
	for _, d := range diffs {
		fmt.Fprintf(w, "  differs: %s\n", d)
	}
	switch {
	case len(diffs) > 0:
		return exitError{code: exitFail, err: fmt.Errorf("bench coverage: %d spec(s) had another outcome with coverage", len(diffs))}
	case plain.suite <= 0 || over > targetCoverageOverhead:
		return exitError{code: exitFail, err: fmt.Errorf("bench coverage: the coverage run's overhead misses its target of %.0f%%", 100*targetCoverageOverhead)}
	}
	return nil
}

// verdictDiffs lists the specs whose outcome differs between two runs of
// the same selection: "text: plain STATE, coverage STATE".
func verdictDiffs(plain, cov []runner.SpecResult) []string {
	state := func(rs []runner.SpecResult) map[string]string {
		m := map[string]string{}
		for _, r := range rs {
			m[r.Text] = r.State
		}
		return m
	}
	p, c := state(plain), state(cov)
	var out []string
	for text, ps := range p {
		if cs, ok := c[text]; !ok || cs != ps {
			if !ok {
				cs = "not run"
			}
			out = append(out, fmt.Sprintf("%s: plain %s, coverage %s", text, ps, cs))
		}
	}
	for text, cs := range c {
		if _, ok := p[text]; !ok {
			out = append(out, fmt.Sprintf("%s: plain not run, coverage %s", text, cs))
		}
	}
	slices.Sort(out)
	return out
}
