package suites

import (
	"context"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/outcome"

	"github.com/scxcheck/scxcheck/vm"
)

// resetTimeout bounds the reset after each spec. The reset is also the
// check that the agent still answers, so it is the longest a stopped agent
// takes to be reported. It is generous: a spec may leave workers running
// under a scheduler that is slow to let the agent run.
const resetTimeout = 30 * time.Second

// specState is what the checks after a spec know about it.
type specState struct {
	// expected holds the failure classes the spec provokes on purpose and
	// asserts on itself; the VM is replaced and the spec not failed.
	expected map[outcome.Class]bool
	// assessed is set once assess has run; verdict and resetErr are its
	// results.
	assessed bool
	verdict  *vm.Verdict
	resetErr error
}

// expectKernelFault tells the checks after the spec that a kernel fault is
// the behaviour under test: the spec asserts on it, and the VM is replaced.
func expectKernelFault() { expectFailure(outcome.Crash) }

// expectFailure tells the checks after the spec that a failure of class c
// is the behaviour under test.
func expectFailure(c outcome.Class) {
	if guest.spec.expected == nil {
		guest.spec.expected = map[outcome.Class]bool{}
	}
	guest.spec.expected[c] = true
}

// assess is what scxcheck concludes about the guest at the end of a spec:
// nil when it is healthy. It reads the console and QEMU's state
// (vm.Machine.Diagnose) and, when they show nothing, resets the guest to a
// clean state, which also proves the agent answers: a reset that gets no
// answer within resetTimeout is an agent verdict. A reset that fails
// otherwise is no verdict, but is returned as resetErr: the VM must be
// replaced. The AfterEach uses it, and so do the fault specs, to assert on
// what the harness reports; it runs once per spec.
func (g *Guest) assess(ctx context.Context) (v *vm.Verdict, resetErr error) {
	if g.spec.assessed {
		return g.spec.verdict, g.spec.resetErr
	}
	defer func() { g.spec.assessed, g.spec.verdict, g.spec.resetErr = true, v, resetErr }()
	if v := g.Diagnose(g.specFaults); v != nil || !g.Alive() {
		return v, nil
	}
	rctx, cancel := context.WithTimeout(ctx, resetTimeout)
	defer cancel()
	r, err := g.Reset(rctx)
	if err == nil {
		// A fault while the schedulers were torn down is the spec's too.
		return g.Diagnose(g.specFaults), nil
	}
	if v := g.Diagnose(g.specFaults); v != nil {
		return v, nil // it died during the reset
	}
	if v := vm.NoAnswer(err); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w (report %+v)", err, r)
}

// failureMessage is how a spec's failure states a verdict. Kernel faults
// keep the form "kernel <kind> during the spec: <line>", which tools
// reading reports match.
func failureMessage(v *vm.Verdict) string {
	var head string
	switch v.Class {
	case outcome.Crash:
		head = fmt.Sprintf("kernel %s during the spec: %s", v.Kind, v.Line)
	case outcome.Agent:
		head = fmt.Sprintf("agent failure during the spec: %s: %s", v.Kind, v.Line)
	default:
		head = fmt.Sprintf("infrastructure failure during the spec: %s: %s", v.Kind, v.Line)
	}
	if v.Excerpt != "" {
		head += "\n" + v.Excerpt
	}
	return head
}

// afterSpec is the AfterEach of every spec: it attaches the guest's
// evidence to a failed spec, replaces a VM that is not healthy (failing
// the spec unless it provoked that on purpose), and otherwise checks that
// the reset left the kernel untainted.
func afterSpec(ctx context.Context, g *Guest) {
	v, resetErr := g.assess(ctx)
	if CurrentSpecReport().Failed() || v != nil {
		AddReportEntry("console tail", g.ConsoleTail(40))
		AddReportEntry("kernel log", strings.Join(g.KernelLog(), "\n"))
		if dump := g.Dump(); len(dump) > 0 {
			AddReportEntry("sched_ext dump", strings.Join(dump, "\n"))
		}
	}
	if v != nil {
		// Nothing in this VM is to be trusted any more: the next spec gets
		// a fresh one.
		g.Close()
		if g.spec.expected[v.Class] {
			AddReportEntry("VM replaced", fmt.Sprintf("the spec provoked this on purpose: %s (%s)", v.Kind, v.Class))
			return
		}
		if v.Class == outcome.Infra && run.result.Infra == nil {
			run.result.Infra = fmt.Errorf("%s: %s", v.Kind, v.Line)
		}
		recordClass(v.Class)
		Fail(failureMessage(v))
	}
	if !g.Alive() {
		return // BeforeEach of the next spec boots a new one
	}
	if resetErr != nil {
		// The kernel did not come back to a clean state: a scheduler stuck
		// enabled, a cgroup that cannot go, sched_ext not disabled.
		AddReportEntry("VM replaced", fmt.Sprintf("reset after the spec failed: %v", resetErr))
		run.opts.Log("reset failed (%v); the next spec gets a fresh VM", resetErr)
		g.Close()
		teardownFailed(g, fmt.Sprintf("the kernel did not come back to a clean state after the spec: %v", resetErr))
		return
	}
	if t, err := g.ReadFile("/proc/sys/kernel/tainted"); err == nil && strings.TrimSpace(t) != g.taint {
		AddReportEntry("VM replaced", fmt.Sprintf("kernel taint changed from %s to %s", g.taint, strings.TrimSpace(t)))
		run.opts.Log("kernel tainted (%s); the next spec gets a fresh VM", strings.TrimSpace(t))
		g.Close()
		teardownFailed(g, fmt.Sprintf("the kernel's taint changed during the spec from %s to %s", g.taint, strings.TrimSpace(t)))
	}
}

// teardownFailed fails the spec with class teardown (unless the spec itself
// failed already, which keeps its own failure), with the kernel log of the
// spec as the excerpt.
func teardownFailed(g *Guest, what string) {
	recordClass(outcome.Teardown)
	if CurrentSpecReport().Failed() {
		AddReportEntry("teardown", what)
		return
	}
	msg := "teardown failure: " + what
	if klog := g.KernelLog(); len(klog) > 0 {
		if len(klog) > 40 {
			klog = klog[len(klog)-40:]
		}
		msg += "\nkernel log of the spec (last lines):\n" + strings.Join(klog, "\n")
	}
	Fail(msg)
}

// recordClass records a failure class of the running spec (outcome.EntryName);
// the most severe one recorded is the spec's.
func recordClass(c outcome.Class) {
	AddReportEntry(outcome.EntryName, string(c), ReportEntryVisibilityNever)
}

// classed returns a Gomega whose failures record class c before failing
// the spec: assertions on exits go through it, so that a scheduler that
// exits when it must not (or not as it must) is an exit failure, never a
// flake.
func classed(c outcome.Class) Gomega {
	return NewGomega(func(message string, callerSkip ...int) {
		recordClass(c)
		skip := 1
		if len(callerSkip) > 0 {
			skip += callerSkip[0]
		}
		Fail(message, skip)
	})
}

// A suite that timed out or was interrupted did not test the kernel fully:
// whatever its failed specs say, that is an infrastructure outcome, not a
// regression (exit 3, not 1).
var _ = ReportAfterSuite("scxcheck: incomplete suite", func(r Report) {
	if run == nil || run.result.Infra != nil {
		return
	}
	for _, reason := range r.SpecialSuiteFailureReasons {
		if strings.Contains(reason, "Timeout") || strings.Contains(reason, "Interrupted") {
			run.result.Infra = fmt.Errorf("the suite did not complete (%s): the specs it did not finish were not tested", reason)
			return
		}
	}
})
