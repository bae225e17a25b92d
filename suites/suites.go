// Package suites holds scxcheck's behaviour specs: what the kernel's
// sched_ext cgroup sub-schedulers do, checked on a real kernel in a VM.
// One file per label (boot, dispatch, distant, nesting, recursion,
// teardown, lifecycle, ownership, hotplug, caps). The run, the VM and the
// checks after every spec belong to package harness; the helpers here
// (helpers.go) are the specs' vocabulary, and every one takes the spec's
// context.
package suites

import (
	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/harness"
)

// h is the run this process's specs belong to (one per process: Ginkgo's
// spec tree is).
var h = harness.New()

// Harness returns the harness the specs of this package run in, for
// packages that add specs of their own (harness/selftests).
func Harness() *harness.Harness { return h }

// Run runs the specs selected by suite with opts and reports through rep.
func Run(t harness.T, opts harness.Options, suite types.SuiteConfig, rep types.ReporterConfig) harness.Result {
	return h.Run(t, opts, suite, rep)
}

// guest is the VM of the running spec.
func guest() *harness.Guest { return h.Guest() }
