// Package suites holds scxcheck's Ginkgo specs: the behaviour of sched_ext
// cgroup sub-schedulers, checked on a real kernel in a VM.
//
// The specs are ordinary Ginkgo v2 containers in this package's non-test
// files, so the same tree runs two ways: `go test ./suites` (configured by
// SCXCHECK_* environment variables, see OptionsFromEnv) and `scxcheck run`
// (configured by its flags), both through Run. Each Ginkgo process boots one
// VM in a synchronized BeforeSuite and powers it off in AfterSuite; a spec
// that crashes the kernel or kills QEMU gets the VM replaced before the next
// one.
package suites

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/vm"
)

// Options configure a run of the suites.
type Options struct {
	// Kernel is the image to boot (an ELF vmlinux or a bzImage).
	Kernel string
	// Accel is QEMU's accelerator; "" means auto.
	Accel vm.Accel
	// TCGThreads is TCG's threading mode; "" means single.
	TCGThreads vm.TCGThreads
	// QEMU is the emulator binary; "" means qemu-system-x86_64.
	QEMU string
	// Artifacts, if set, receives the console log and event stream.
	Artifacts string
	// Log receives progress lines; nil means stderr.
	Log func(format string, args ...any)
	// OnSpec, if set, receives the record of every spec that ran, after
	// its artifacts are written (see artifacts.go).
	OnSpec func(SpecRecord)
	// Boot, if set, replaces booting a VM: the replay of a spec inside
	// the guest (package repro) runs the suites on a local vm.Machine.
	Boot func(ctx context.Context) (*vm.Machine, error)
}

// OptionsFromEnv reads Options for `go test`: SCXCHECK_KERNEL (required),
// SCXCHECK_ACCEL, SCXCHECK_ARTIFACTS.
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

// run is the state of this process's run. Ginkgo's spec tree is global, so
// this is the one package-level variable: Run sets it before RunSpecs.
var run *runState

type runState struct {
	opts      Options
	result    Result
	initramfs string // built once per run by process 1
	sharedDir string // holds it; removed at the end
}

// T is what RunSpecs needs of a testing.T.
type T interface{ Fail() }

// Run runs the specs selected by suite (label filter, focus) with opts and
// reports through rep (JUnit file, verbosity).
func Run(t T, opts Options, suite types.SuiteConfig, rep types.ReporterConfig) Result {
	if opts.Log == nil {
		opts.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "scxcheck: "+format+"\n", args...) }
	}
	if opts.Accel == "" {
		opts.Accel = vm.AccelAuto
	}
	suite.LabelFilter = withoutSelftest(suite.LabelFilter)
	run = &runState{opts: opts, result: Result{SkipReasons: map[string]int{}}}
	RegisterFailHandler(Fail)
	if !RunSpecs(t, "scxcheck", suite, rep) && run.result.Failed == 0 && run.result.Infra == nil {
		// Interrupted, timed out, or a setup node failed without saying why:
		// whatever it was, the kernel was not tested.
		run.result.Infra = errors.New("the suite did not complete (interrupted, timed out, or a setup node failed); see the output above")
	}
	return run.result
}

var _ = ReportAfterEach(func(r SpecReport) {
	if run == nil || r.LeafNodeType != types.NodeTypeIt {
		return
	}
	if r.State == types.SpecStateSkipped && r.Failure.Message == "" {
		return // not selected by the label filter or focus: not run, not a skip
	}
	res := &run.result
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
	run.opts.Log("%s %s (%s)", mark, r.FullText(), r.RunTime.Round(time.Millisecond))
})

// writeArtifacts saves what a machine produced into the artifacts directory.
func writeArtifacts(dir string, m *vm.Machine, name string) error {
	if dir == "" || m == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	if b, err := os.ReadFile(m.ConsoleLog()); err == nil {
		if err := os.WriteFile(filepath.Join(dir, name+"-console.log"), b, 0o644); err != nil {
			return fmt.Errorf("write artifacts: %w", err)
		}
	}
	f, err := os.Create(filepath.Join(dir, name+"-events.jsonl"))
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, ev := range m.Events().Since(0) {
		_ = enc.Encode(ev)
	}
	return nil
}
