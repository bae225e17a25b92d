package harness

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

// resetTimeout bounds the call after each spec that reads the exits,
// resets the guest and reads the taint. It is also the check that the
// agent still answers, so it is the longest a stopped agent takes to be
// reported. It is generous: a spec may leave workers running under a
// scheduler that is slow to let the agent run.
const resetTimeout = 30 * time.Second

// specVerdict is what the checks after a spec know about it.
type specVerdict struct {
	// expected holds the failure classes the spec provokes on purpose and
	// asserts on itself; the VM is replaced and the spec not failed.
	expected map[outcome.Class]bool
	// assessed is set once Assess has run; the rest are its results.
	assessed bool
	verdict  *vm.Verdict
	resetErr error
	taint    string
}

// ExpectFailure tells the checks after the spec that a failure of class c
// (outcome.Crash, outcome.Agent, outcome.Infra) is the behaviour under
// test: the spec asserts on it itself, and the VM is replaced.
func (h *Harness) ExpectFailure(c outcome.Class) {
	g := h.guest
	if g.verdict.expected == nil {
		g.verdict.expected = map[outcome.Class]bool{}
	}
	g.verdict.expected[c] = true
}

// Assess is what scxcheck concludes about the guest at the end of a spec:
// a verdict when it is not healthy (vm.Machine.Diagnose: console faults,
// QEMU's state), or, when it is, the outcome of the call that reads the
// spec's exits, resets the guest and reads the taint. That call also proves
// the agent answers: no answer within resetTimeout is an agent verdict. A
// reset that fails otherwise is no verdict but resetErr: the kernel did not
// come back to a clean state. The suite-wide AfterEach uses it, and so do
// the fault specs, to assert on what the harness reports; it runs once per
// spec.
func (h *Harness) Assess(ctx context.Context) (v *vm.Verdict, resetErr error) {
	g := h.guest
	if g.verdict.assessed {
		return g.verdict.verdict, g.verdict.resetErr
	}
	defer func() { g.verdict.assessed, g.verdict.verdict, g.verdict.resetErr = true, v, resetErr }()
	if v := g.Diagnose(g.specFaults); v != nil || !g.Alive() {
		h.noExits("the VM was gone")
		return v, nil
	}
	rctx, cancel := context.WithTimeout(ctx, resetTimeout)
	defer cancel()
	after, err := g.AfterSpec(rctx, h.specSchedIDs())
	if err != nil {
		h.noExits(firstLine(err.Error()))
		if v := g.Diagnose(g.specFaults); v != nil {
			return v, nil // it died during the call
		}
		if v := vm.NoAnswer(err); v != nil {
			return v, nil
		}
		return nil, err
	}
	h.keepExits(after.Exits)
	g.verdict.taint = after.Taint
	// A fault while the schedulers were torn down is the spec's too.
	if v := g.Diagnose(g.specFaults); v != nil {
		return v, nil
	}
	if after.ResetErr != "" {
		return nil, fmt.Errorf("%s (left over: %+v)", after.ResetErr, after.Reset)
	}
	return nil, nil
}

// failureMessage is how a spec's failure states a verdict.
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

// FailureMessage is the failure a spec that did not expect v gets; the
// fault specs check it.
func FailureMessage(v *vm.Verdict) string { return failureMessage(v) }

// afterSpec is the AfterEach of every spec: it attaches the guest's evidence
// to a failed spec, replaces a VM that is not healthy (failing the spec
// unless it provoked that on purpose), and fails as teardown a spec after
// which the kernel did not come back to a clean state or got tainted.
func (h *Harness) afterSpec(ctx context.Context, g *Guest) {
	v, resetErr := h.Assess(ctx)
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
		if g.verdict.expected[v.Class] {
			AddReportEntry("VM replaced", fmt.Sprintf("the spec provoked this on purpose: %s (%s)", v.Kind, v.Class))
			return
		}
		if v.Class == outcome.Infra && h.result.Infra == nil {
			h.result.Infra = fmt.Errorf("%s: %s", v.Kind, v.Line)
		}
		RecordClass(v.Class)
		Fail(failureMessage(v))
	}
	if !g.Alive() {
		return // BeforeEach of the next spec boots a new one
	}
	if resetErr != nil {
		// The kernel did not come back to a clean state: a scheduler stuck
		// enabled, a cgroup that cannot go, sched_ext not disabled.
		AddReportEntry("VM replaced", fmt.Sprintf("reset after the spec failed: %v", resetErr))
		h.Log("reset failed (%v); the next spec gets a fresh VM", resetErr)
		g.Close()
		teardownFailed(g, fmt.Sprintf("the kernel did not come back to a clean state after the spec: %v", resetErr))
		return
	}
	if t := g.verdict.taint; t != g.Hello.Taint {
		AddReportEntry("VM replaced", fmt.Sprintf("kernel taint changed from %s to %s", g.Hello.Taint, t))
		h.Log("kernel tainted (%s); the next spec gets a fresh VM", t)
		g.Close()
		teardownFailed(g, fmt.Sprintf("the kernel's taint changed during the spec from %s to %s", g.Hello.Taint, t))
	}
}

// teardownFailed fails the spec with class teardown (unless the spec itself
// failed already, which keeps its own failure), with the kernel log of the
// spec as the excerpt.
func teardownFailed(g *Guest, what string) {
	RecordClass(outcome.Teardown)
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

// RecordClass records a failure class of the running spec
// (outcome.EntryName); the most severe one recorded is the spec's.
func RecordClass(c outcome.Class) {
	AddReportEntry(outcome.EntryName, string(c), ReportEntryVisibilityNever)
}

// Classed returns a Gomega whose failures record class c before failing
// the spec: assertions on exits go through it, so that a scheduler that
// exits when it must not (or not as it must) is an exit failure, never a
// flake.
func Classed(c outcome.Class) Gomega {
	return NewGomega(func(message string, callerSkip ...int) {
		RecordClass(c)
		skip := 1
		if len(callerSkip) > 0 {
			skip += callerSkip[0]
		}
		Fail(message, skip)
	})
}
