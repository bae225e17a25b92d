// Package runner runs `scxcheck run` several times in child processes and
// turns the runs into per-spec pass rates and one verdict.
//
// Ginkgo runs a spec tree once per process (RunSpecs), so repeating specs
// means re-executing the command: Repeat does that, each run writing a
// Ginkgo JSON report that Repeat reads back. Aggregate and the verdict rule
// (see Summary.Verdict) are shared by `scxcheck run --repeat` (the CI gate),
// `scxcheck bisect` (each commit is tested N times) and `scxcheck soak`.
package runner

import (
	"regexp"
	"strings"
)

// Class says what kind of failure a spec had. The verdict rule treats the
// classes differently: a crash or a wrong exit kind is never a flake.
type Class string

// Failure classes.
const (
	ClassNone Class = "" // the spec did not fail
	// ClassCrash: the kernel faulted (panic, oops, BUG, WARNING, RCU stall,
	// hung task) or QEMU died during the spec.
	ClassCrash Class = "crash"
	// ClassExit: an exit-kind assertion (matchers.ExitWith) failed: a
	// scheduler did not exit as the kernel's contract says.
	ClassExit Class = "exit"
	// ClassAssertion: any other assertion (counters, trace events, log
	// lines, timing) or a panic in the spec's code.
	ClassAssertion Class = "assertion"
	// ClassAgent: the guest agent died, powered the guest off or stopped
	// answering during the spec. The kernel may be fine (a starving
	// scheduler can also stop the agent); the spec could not be checked.
	ClassAgent Class = "agent"
	// ClassTimeout: the spec or the run timed out or was interrupted.
	ClassTimeout Class = "timeout"
	// ClassInfra: the spec could not run (the VM did not boot, QEMU is
	// missing): the kernel was not tested.
	ClassInfra Class = "infra"
)

var (
	// guest.go's AfterEach: "kernel <kind> during the spec: <line>".
	crashRe = regexp.MustCompile(`(?m)^kernel (kernel panic|oops|BUG|WARNING|RCU stall|hung task) during the spec`)
	// suites/verdict.go's other verdicts.
	agentRe = regexp.MustCompile(`(?m)^agent failure during the spec: `)
	infraRe = regexp.MustCompile(`(?m)^infrastructure failure during the spec: `)
	// vm.ErrExited wrapped in an agent call or a boot.
	exitedRe = regexp.MustCompile(`\bVM exited (during the call|before)`)
)

// Classify classifies a spec outcome from Ginkgo's state name ("passed",
// "failed", "panicked", "timedout", "interrupted", "aborted", ...) and the
// failure message.
func Classify(state, message string) Class {
	switch state {
	case "passed", "skipped", "pending", "":
		return ClassNone
	case "timedout", "interrupted":
		return ClassTimeout
	}
	switch {
	case crashRe.MatchString(message):
		return ClassCrash
	case agentRe.MatchString(message):
		return ClassAgent
	case infraRe.MatchString(message):
		return ClassInfra
	case exitedRe.MatchString(message):
		return ClassCrash
	// matchers.ExitWith's messages, also inside an Eventually's timeout.
	case strings.Contains(message, "expected an exit SCX_"), strings.Contains(message, "expected no exit SCX_"):
		return ClassExit
	}
	return ClassAssertion
}
