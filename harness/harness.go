// Package harness runs scxcheck's Ginkgo specs against a kernel in VMs: it
// owns a run's lifecycle (one VM per Ginkgo process, booted before the
// first spec and replaced after one that breaks it), gives the specs their
// guest (typed calls into the agent, each taking the spec's context), gives
// every spec its verdict afterwards (kernel faults, exits, teardown) and
// writes its artifacts.
//
// The specs live elsewhere (package suites, and the harness's own fault
// matrix in package harness/selftests); they reach the harness through the
// one *Harness their package made with New. Ginkgo's spec tree is per
// process, so there is one Harness per process, but the harness keeps no
// package-level state of its own.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/vm"
)

// Options configure a run of the specs.
type Options struct {
	// Kernel is the image to boot (an ELF vmlinux or a bzImage).
	Kernel string
	// Accel is QEMU's accelerator; "" means auto.
	Accel vm.Accel
	// TCGThreads is TCG's threading mode; "" means single.
	TCGThreads vm.TCGThreads
	// QEMU is the emulator binary; "" means qemu-system-x86_64.
	QEMU string
	// Artifacts, if set, receives the console log and event stream of each
	// VM and a directory per spec (see SpecRecord).
	Artifacts string
	// Log receives progress lines; nil means stderr.
	Log func(format string, args ...any)
	// OnSpec, if set, receives the record of every spec that ran, after
	// its artifacts are written.
	OnSpec func(SpecRecord)
	// KVMVerdicts is vm.Config.KVMVerdicts: where failed KVM probes are
	// remembered; "" probes on every boot.
	KVMVerdicts string
	// Coverage, if set, keeps every spec's gcov data (coverage.go).
	Coverage *Coverage
	// Timeline, with Artifacts, collects every spec's timeline events into
	// its timeline.txt.gz, for the run report (timeline.go).
	Timeline bool
	// Boot, if set, replaces booting a VM: the replay of a spec inside
	// the guest (package repro) runs the specs on a local vm.Machine.
	Boot func(ctx context.Context) (*vm.Machine, error)
}

// OptionsFromEnv reads Options for `go test`: SCXCHECK_KERNEL (required),
// SCXCHECK_ACCEL, SCXCHECK_ARTIFACTS, SCXCHECK_TCG_THREADS.
func OptionsFromEnv() (Options, error) {
	o := Options{
		Kernel:     os.Getenv("SCXCHECK_KERNEL"),
		Accel:      vm.Accel(os.Getenv("SCXCHECK_ACCEL")),
		Artifacts:  os.Getenv("SCXCHECK_ARTIFACTS"),
		TCGThreads: vm.TCGThreads(os.Getenv("SCXCHECK_TCG_THREADS")),
	}
	if o.Kernel == "" {
		return o, fmt.Errorf("SCXCHECK_KERNEL is not set: point it at a kernel image (`scxcheck kernel fetch` prints the default one's path)")
	}
	if o.Accel == "" {
		o.Accel = vm.AccelAuto
	}
	return o, nil
}

// Result summarises a run.
type Result struct {
	Passed, Failed, Skipped int
	// SkipReasons counts the skipped specs by the reason they gave.
	SkipReasons map[string]int
	// Infra is set when the run could not test the kernel at all (no QEMU,
	// no boot): the CLI reports it as an infrastructure failure.
	Infra error
	// BootTimes are the agent-ready times of the VMs this process booted.
	BootTimes []time.Duration
	// Accel is the accelerator the VMs ran on.
	Accel vm.Accel
	// Release is the guest kernel's release (uname -r); API its
	// sub-scheduler API generation as the probe describes it
	// (probe.Describe), e.g. "7.3 (per-CPU capabilities ...)".
	Release, API string
}

// OK reports whether the run passed: no failure and no infrastructure error.
func (r Result) OK() bool { return r.Failed == 0 && r.Infra == nil }

// Summary is the closing lines of a run: counts, skip reasons, boot time.
func (r Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scxcheck: %d passed, %d failed, %d skipped\n", r.Passed, r.Failed, r.Skipped)
	if r.Release != "" {
		fmt.Fprintf(&b, "  kernel %s, sub-scheduler API %s\n", r.Release, r.API)
	}
	reasons := make([]string, 0, len(r.SkipReasons))
	for k := range r.SkipReasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, "  skipped %d: %s\n", r.SkipReasons[k], k)
	}
	if len(r.BootTimes) > 0 {
		fmt.Fprintf(&b, "  boot to agent ready: %s (%s, %d boots)\n", r.BootTimes[0].Round(time.Millisecond), r.Accel, len(r.BootTimes))
	}
	if r.Infra != nil {
		fmt.Fprintf(&b, "  infrastructure error: %v\n", r.Infra)
	}
	return b.String()
}

// Labels of specs that check scxcheck itself, not the kernel under test.
// They run only when a label filter names them, so that the gate never
// mistakes a harness bug for a kernel regression.
const (
	// SelftestLabel marks specs that fail on purpose: they check scxcheck's
	// own failure path (exit codes, artifacts, reproduction bundles,
	// bisect) against a real kernel.
	SelftestLabel = "selftest"
	// FaultLabel marks the fault matrix: scxcheck's verdict when the guest,
	// the agent or QEMU break (package harness/selftests).
	FaultLabel = "fault"
)

// harnessOnly adds "!selftest && !fault" for each of the labels a filter
// does not mention.
func harnessOnly(filter string) string {
	out := strings.TrimSpace(filter)
	for _, l := range []string{SelftestLabel, FaultLabel} {
		if strings.Contains(filter, l) {
			continue
		}
		if out == "" {
			out = "!" + l
		} else {
			out = "(" + out + ") && !" + l
		}
	}
	return out
}

// T is what RunSpecs needs of a testing.T.
type T interface{ Fail() }

// Harness is a run's state: the options, the result so far, the VM of this
// process and what the running spec has done. Make one with New at package
// init of the specs' package, then call Run.
type Harness struct {
	opts      Options
	result    Result
	initramfs string // built once per run by process 1
	sharedDir string // holds it; removed at the end
	guest     *Guest
	spec      specCapture // the running spec (artifacts.go)
	cov       specCoverage
	running   bool
}

// New registers the harness's suite-wide Ginkgo nodes (boot before the
// suite, the checks before and after every spec, the report of each spec)
// and returns the harness. Call it once per process, at package init.
func New() *Harness {
	h := &Harness{}
	SynchronizedBeforeSuite(h.prepareRun, h.bootFirst)
	SynchronizedAfterSuite(h.shutdown, h.cleanUp)
	BeforeEach(h.beforeEach)
	AfterEach(h.afterEach)
	ReportAfterEach(h.report)
	ReportAfterSuite("scxcheck: incomplete suite", h.incomplete)
	return h
}

// Run runs the specs selected by suite (label filter, focus) with opts and
// reports through rep (JUnit file, verbosity).
func (h *Harness) Run(t T, opts Options, suite types.SuiteConfig, rep types.ReporterConfig) Result {
	if opts.Log == nil {
		opts.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "scxcheck: "+format+"\n", args...) }
	}
	if opts.Accel == "" {
		opts.Accel = vm.AccelAuto
	}
	suite.LabelFilter = harnessOnly(suite.LabelFilter)
	h.opts, h.result, h.running = opts, Result{SkipReasons: map[string]int{}}, true
	h.cov = specCoverage{cfg: opts.Coverage}
	gomega.RegisterFailHandler(Fail)
	if !RunSpecs(t, "scxcheck", suite, rep) && h.result.Failed == 0 && h.result.Infra == nil {
		// Interrupted, timed out, or a setup node failed without saying why:
		// whatever it was, the kernel was not tested.
		h.result.Infra = errors.New("the suite did not complete (interrupted, timed out, or a setup node failed); see the output above")
	}
	return h.result
}

// Options returns the options of the run.
func (h *Harness) Options() Options { return h.opts }

// Initramfs returns the initramfs the run's VMs boot (the agent as /init).
func (h *Harness) Initramfs() string { return h.initramfs }

// Log writes a progress line.
func (h *Harness) Log(format string, args ...any) { h.opts.Log(format, args...) }

// count adds a spec's outcome to the result and logs it.
func (h *Harness) count(r SpecReport) {
	res := &h.result
	switch {
	case r.State == types.SpecStatePassed:
		res.Passed++
	case r.State == types.SpecStateSkipped:
		res.Skipped++
		res.SkipReasons[strings.TrimSpace(r.Failure.Message)]++
	case r.State.Is(types.SpecStateFailureStates):
		res.Failed++
	}
	mark := "ok  "
	switch {
	case r.State == types.SpecStateSkipped:
		mark = "skip"
	case r.State.Is(types.SpecStateFailureStates):
		mark = "FAIL"
	}
	h.Log("%s %s (%s)", mark, r.FullText(), r.RunTime.Round(time.Millisecond))
}

// incomplete is the ReportAfterSuite: a suite that timed out or was
// interrupted did not test the kernel fully. Whatever its failed specs say,
// that is an infrastructure outcome, not a regression (exit 3, not 1).
func (h *Harness) incomplete(r Report) {
	if !h.running || h.result.Infra != nil {
		return
	}
	for _, reason := range r.SpecialSuiteFailureReasons {
		if strings.Contains(reason, "Timeout") || strings.Contains(reason, "Interrupted") {
			h.result.Infra = fmt.Errorf("the suite did not complete (%s): the specs it did not finish were not tested", reason)
			return
		}
	}
}
