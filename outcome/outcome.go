// Package outcome is scxcheck's vocabulary for how a spec and a run end:
// the failure classes, the exit codes of a run, and the report entry in
// which the suites record a failed spec's class for the tools that read
// their reports (the repeat runner, soak, bisect, repro). A class is data
// the suite writes; nothing reads it back out of a failure message.
package outcome

import (
	"github.com/onsi/ginkgo/v2/types"
)

// Class says what kind of failure a spec had.
type Class string

// Failure classes, from the most severe: the verdict rule (package runner)
// never counts a crash, an exit or a teardown failure as a flake.
const (
	// None: the spec did not fail.
	None Class = ""
	// Crash: the kernel faulted (panic, oops, BUG, WARNING, RCU stall, hung
	// task) during the spec.
	Crash Class = "crash"
	// Exit: a scheduler exited when the kernel's contract says it must not,
	// or did not exit as it says it must (the kind, reason or message).
	Exit Class = "exit"
	// Teardown: after the spec the kernel did not come back to a clean
	// state: sched_ext not disabled, a scheduler or cgroup left behind, or
	// the kernel's taint changed.
	Teardown Class = "teardown"
	// Agent: the guest agent died, powered the guest off or stopped
	// answering. The kernel may be fine; the spec could not be checked.
	Agent Class = "agent"
	// Timeout: the spec or the run timed out or was interrupted.
	Timeout Class = "timeout"
	// Assertion: any other assertion (counters, trace events, log lines,
	// sysfs, timing) or a panic in the spec's code.
	Assertion Class = "assertion"
	// Infra: the kernel could not be tested (QEMU missing or killed from
	// outside, no boot).
	Infra Class = "infra"
)

// severity orders the classes: a spec that failed in several ways is
// classed by the most severe.
var severity = map[Class]int{Crash: 7, Exit: 6, Teardown: 5, Agent: 4, Timeout: 3, Assertion: 2, Infra: 1}

// MoreSevere reports whether c is more severe than d.
func (c Class) MoreSevere(d Class) bool { return severity[c] > severity[d] }

// NeverFlake reports whether a failure of class c fails a spec in any run,
// whatever the other runs did: the kernel broke its contract.
func (c Class) NeverFlake() bool { return c == Crash || c == Exit || c == Teardown }

// Known reports whether c is one of the classes above.
func (c Class) Known() bool { return c == None || severity[c] > 0 }

// EntryName is the Ginkgo report entry in which the suites record a class
// (its value is the Class as a string). A spec may carry several; the most
// severe counts.
const EntryName = "scxcheck.class"

// Of returns the class of a spec from its Ginkgo report: none when it did
// not fail; else the most severe class the suite recorded; else timeout for
// a spec that timed out or was interrupted, and assertion for any other
// failure.
func Of(r types.SpecReport) Class {
	if !r.State.Is(types.SpecStateFailureStates) {
		return None
	}
	c := None
	for _, e := range r.ReportEntries {
		if e.Name != EntryName {
			continue
		}
		if rc := Class(e.StringRepresentation()); rc.Known() && rc.MoreSevere(c) {
			c = rc
		}
	}
	switch {
	case c != None:
		return c
	case r.State.Is(types.SpecStateTimedout | types.SpecStateInterrupted):
		return Timeout
	}
	return Assertion
}

// Exit codes of scxcheck's commands.
const (
	// ExitPass: every spec that ran passed (and at least one did).
	ExitPass = 0
	// ExitFail: a spec failed: a regression.
	ExitFail = 1
	// ExitUsage: bad flags or bad input (a missing kernel, a kernel without
	// sched_ext, a patch that does not apply, a tree that does not build).
	ExitUsage = 2
	// ExitInfra: the kernel was not (fully) tested: QEMU missing, no boot,
	// the run interrupted, or nothing tested at all.
	ExitInfra = 3
)
