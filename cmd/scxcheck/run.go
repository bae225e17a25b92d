package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/onsi/ginkgo/v2/types"
	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/internal/junit"
	"github.com/scxcheck/scxcheck/suites"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		k           kernelFlags
		labelFilter string
		focus       string
		junit       string
		artifacts   string
		verbose     bool
		timeout     time.Duration
		repeat      int
		jsonReport  string
		procs       int
		report      string
		timeline    bool
		failFast    bool
		cov         coverageFlags
	)
	fs := newFlagSet("run", `Runs scxcheck's suites against a kernel in a QEMU VM and prints a summary.
Without --kernel it uses Debian's prebuilt kernel with sub-schedulers, fetching it
into the cache on first use.

Labels select one concern: boot, dispatch, distant, nesting, recursion, teardown,
lifecycle, ownership, hotplug, caps (Linux 7.3 capabilities); slow marks the longest.
scxcheck's checks of itself run only when a filter names them: fault (its verdict when
the guest, agent, QEMU or KVM break) and selftest (specs that fail on purpose).

--kernel takes an image, a Debian cloud kernel release or 'default'; given more than
once it tests each kernel in turn and prints one table, spec by kernel.
Example: scxcheck run --label-filter='boot || dispatch' --junit out.xml
         scxcheck run --kernel default --kernel 7.3.4+deb13-cloud-amd64 --procs 2`, stdout)
	k.register(fs)
	fs.StringVar(&labelFilter, "label-filter", "", "run only the specs matching this Ginkgo label `expression`, e.g. 'boot || dispatch'")
	fs.StringVar(&focus, "focus", "", "run only the specs whose text matches this `regexp`")
	fs.StringVar(&junit, "junit", "", "write a JUnit XML report to this `file`")
	fs.StringVar(&artifacts, "artifacts", "", "write console logs and event streams into this `directory`")
	fs.BoolVar(&verbose, "v", false, "verbose Ginkgo output")
	fs.DurationVar(&timeout, "timeout", time.Hour, "fail the run after this `duration`")
	fs.IntVar(&repeat, "repeat", 1, "run the selected specs `N` times, each time in a new process, and report each spec's pass rate (docs/ci.md: the verdict rule)")
	fs.StringVar(&jsonReport, "json-report", "", "write Ginkgo's JSON report to this `file`")
	fs.IntVar(&procs, "procs", 1, "run the specs in `N` processes, one VM each, as ginkgo -p does")
	fs.StringVar(&report, "report", "", "write an HTML run report into this `directory` (implies --timeline; --artifacts and --junit default to files in it)")
	fs.BoolVar(&failFast, "fail-fast", false, "stop at the first spec that fails; the specs after it are reported skipped (one process, one kernel, no --repeat)")
	fs.BoolVar(&timeline, "timeline", false, "collect each spec's context switches, scheduler ownership and sched_ext events into its artifacts (timeline.txt.gz), for a report")
	cov.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if repeat < 1 {
		return usageErrorf("run: --repeat must be at least 1, not %d", repeat)
	}
	if procs < 1 || procs > maxProcs {
		return usageErrorf("run: --procs must be 1 to %d, not %d", maxProcs, procs)
	}
	if failFast && (procs > 1 || repeat > 1 || len(k.kernels) > 1) {
		return usageErrorf("run: --fail-fast needs one process, one kernel and no --repeat")
	}
	child, err := parallelChildFromEnv()
	if err != nil {
		return usageErrorf("run: %v", err)
	}
	if err := checkLabelFilter(labelFilter); err != nil {
		return err
	}
	if report != "" && child == nil {
		if err := reportDefaults(fs, report); err != nil {
			return usageErrorf("run: --report: %v", err)
		}
		defer writeReport(report, artifacts, junit, stderr) // report.go
	}
	minCov, err := cov.check(&k, repeat)
	if err != nil {
		return err
	}
	k.build.coverage = cov.on
	if len(k.kernels) > 1 {
		if child != nil {
			return usageErrorf("run: a parallel child tests one kernel")
		}
		return runMatrix(ctx, fs, &k, junit, artifacts, stdout, stderr)
	}
	t, err := k.resolve(ctx, stderr)
	if artifacts != "" && child == nil {
		if err := saveBuildArtifacts(artifacts, t.built, err); err != nil {
			fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		}
	}
	if err != nil {
		return err
	}
	if cov.on {
		if t.cov, err = cov.start(ctx, t, minCov, artifacts, child == nil, fs, stderr); err != nil {
			return err
		}
	}
	img, accel, threads := t.img, t.accel, t.threads

	if repeat > 1 {
		return runRepeated(ctx, fs, img, repeat, junit, artifacts, stdout, stderr)
	}

	suiteConfig := types.NewDefaultSuiteConfig()
	suiteConfig.LabelFilter = labelFilter
	if focus != "" {
		suiteConfig.FocusStrings = []string{focus}
	}
	suiteConfig.Timeout = timeout
	suiteConfig.FailFast = failFast
	reporterConfig := types.NewDefaultReporterConfig()
	reporterConfig.JUnitReport = junit
	reporterConfig.JSONReport = jsonReport
	reporterConfig.Verbose = verbose
	reporterConfig.NoColor = !isTerminal(os.Stdout)
	if procs > 1 && child == nil {
		return runParallel(ctx, fs, t, procs, reporterConfig, stdout, stderr)
	}
	if child != nil {
		child.configure(&suiteConfig) // the parent prefixes its output with [p<N>]
	}

	if child == nil {
		fmt.Fprintf(stderr, "scxcheck: kernel %s\n", img.Boot)
	}
	onSpec, closeBundles := failureBundles(img, artifacts, stderr) // repro.go
	defer closeBundles()
	verdicts := ""
	if dir, err := k.cacheDir(); err == nil {
		verdicts = filepath.Join(dir, "kvm-probe.json")
	}
	res := suites.Run(&fakeT{}, harness.Options{
		KVMVerdicts: verdicts,
		Kernel:      img.Boot,
		Accel:       accel,
		TCGThreads:  threads,
		QEMU:        k.qemu,
		Artifacts:   artifacts,
		Timeline:    timeline,
		OnSpec:      onSpec,
		Coverage:    t.cov.harnessOptions(),
		Log:         func(format string, args ...any) { fmt.Fprintf(stderr, "scxcheck: "+format+"\n", args...) },
	}, suiteConfig, reporterConfig)
	if child != nil {
		if err := child.finish(res); err != nil {
			return infraError(err)
		}
		return resultExit(res)
	}
	fmt.Fprint(stdout, res.Summary())
	return finishRun(ctx, res, t, junit, stdout, stderr)
}

// finishRun does what a run does after its summary, with or without
// --procs: the coverage report (--coverage), scxcheck's properties in the
// JUnit report, the result for a matrix parent (resultFileEnv); it returns
// the run's exit.
func finishRun(ctx context.Context, res harness.Result, t target, junitPath string, stdout, stderr io.Writer) error {
	props := runProperties(res, t)
	var covErr error
	if t.cov != nil && res.Infra == nil {
		var more []junit.Property
		more, covErr = t.cov.end(ctx, stdout, stderr)
		props = append(props, more...)
	}
	if junitPath != "" {
		if err := junit.AddProperties(junitPath, props); err != nil {
			fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		}
	}
	if f := os.Getenv(resultFileEnv); f != "" {
		if err := writeResult(f, res); err != nil {
			fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		}
	}
	if errors.Is(res.Infra, harness.ErrNoGcov) {
		return badInput(res.Infra)
	}
	if err := resultExit(res); err != nil {
		return err
	}
	return covErr
}

// runProperties are the JUnit suite properties of a run: what was tested.
func runProperties(res harness.Result, t target) []junit.Property {
	props := []junit.Property{
		{Name: "scxcheck.kernel", Value: t.img.Boot},
		{Name: "scxcheck.kernel.release", Value: res.Release},
		{Name: "scxcheck.kernel.api", Value: res.API},
		{Name: "scxcheck.accel", Value: string(res.Accel)},
	}
	if t.built != nil {
		props = append(props, junit.Property{Name: "scxcheck.kernel.test_patch", Value: strconv.FormatBool(t.built.TestPatch)})
	}
	return props
}

// fakeT stands in for testing.T when the suites run outside go test.
type fakeT struct{ failed bool }

func (t *fakeT) Fail() { t.failed = true }

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// checkLabelFilter refuses a label filter Ginkgo cannot parse, in one
// plain line (Ginkgo's own error is several lines of terminal colours).
func checkLabelFilter(filter string) error {
	_, err := types.ParseLabelFilter(filter)
	if err == nil {
		return nil
	}
	var ge types.GinkgoError
	if errors.As(err, &ge) {
		// The message is the filter with the error marked up for a
		// terminal, then the reason on its own line.
		lines := strings.Split(strings.TrimSpace(ge.Message), "\n")
		return usageErrorf("--label-filter %q: %s: %s", filter, strings.ToLower(ge.Heading), strings.TrimSpace(lines[len(lines)-1]))
	}
	return usageErrorf("--label-filter %q: %v", filter, err)
}
