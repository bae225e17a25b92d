package vm

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/scxcheck/scxcheck/outcome"
)

// Verdict is what scxcheck concludes about a machine that is not healthy.
type Verdict struct {
	// Class is outcome.Crash (the kernel under test faulted: a finding
	// about the kernel), outcome.Agent (the guest agent died, powered the
	// guest off or stopped answering: the kernel may be fine, the spec
	// could not be checked) or outcome.Infra (QEMU died or was killed
	// without the kernel faulting: the kernel was not tested).
	Class outcome.Class
	// Kind names the failure: a FaultKind ("kernel panic", "oops", ...),
	// or "agent died", "agent exited", "agent not answering", "QEMU killed",
	// "QEMU exited".
	Kind string
	// Line is the evidence in one line: the console's fault line, QEMU's
	// exit status, or the unanswered call's error.
	Line string
	// Excerpt holds the console lines around the fault, or the console's
	// last lines.
	Excerpt string
}

// Error describes the verdict: kind and class, evidence, console excerpt.
func (v *Verdict) Error() string {
	s := fmt.Sprintf("%s (%s): %s", v.Kind, v.Class, v.Line)
	if v.Excerpt != "" {
		s += "\n" + v.Excerpt
	}
	return s
}

// Verdict kinds that are not console faults.
const (
	KindAgentDied       = "agent died"
	KindAgentExited     = "agent exited"
	KindAgentNoAnswer   = "agent not answering"
	KindQEMUKilled      = "QEMU killed"
	KindQEMUExited      = "QEMU exited"
	killedInitSignature = "Attempted to kill init"
)

// panicSettle bounds the wait for QEMU to exit after a panic line, so that
// the excerpt holds the whole panic. With panic=-1 and -no-reboot QEMU exits
// within a second of the panic line even under TCG.
// A fault that is not a panic gets faultSettle for its report.
const (
	panicSettle = 10 * time.Second
	faultSettle = 2 * time.Second
)

// Diagnose says what is wrong with the machine as far as its console and
// QEMU's exit tell, considering only faults from index sinceFault on (the
// count of Faults() at the start of a spec); nil means nothing is wrong
// that they show. It does not call the agent: an agent that is alive but
// does not answer shows up as ErrNoAnswer from Call (see NoAnswer).
//
// A kernel fault is outcome.Crash, except a panic because init exited ("Attempted
// to kill init"), which is the agent dying: outcome.Agent. Without a fault, QEMU
// killed by a signal scxcheck did not send is outcome.Infra; QEMU exiting
// because the guest powered off when nobody asked is the agent giving up
// (it powers off on a fatal error): outcome.Agent.
func (m *Machine) Diagnose(sinceFault int) *Verdict {
	faults := m.Faults()
	if sinceFault < len(faults) {
		f := faults[sinceFault]
		// Let the fault's report reach the console, so that the excerpt
		// holds all of it: a panic ends QEMU, other faults just stop
		// printing.
		settle := faultSettle
		if m.panicked(sinceFault) {
			settle = panicSettle
		}
		select {
		case <-m.exited:
		case <-time.After(settle):
		}
		v := &Verdict{Class: outcome.Crash, Kind: string(f.Kind), Line: strings.TrimSpace(f.Line), Excerpt: m.FaultExcerpt(f)}
		for _, g := range m.Faults()[sinceFault:] {
			if g.Kind == FaultPanic && strings.Contains(g.Line, killedInitSignature) {
				v = &Verdict{Class: outcome.Agent, Kind: KindAgentDied, Line: strings.TrimSpace(g.Line), Excerpt: m.FaultExcerpt(g)}
				break
			}
		}
		return v
	}
	if m.Alive() {
		return nil
	}
	tail := m.ConsoleTail(20)
	var ee *exec.ExitError
	switch {
	case errors.As(m.exitErr, &ee) && signaled(ee):
		if m.closing.Load() {
			return nil // Close killed it
		}
		return &Verdict{Class: outcome.Infra, Kind: KindQEMUKilled, Line: m.exitStatus() + " (not sent by scxcheck)", Excerpt: tail}
	case m.exitErr != nil:
		return &Verdict{Class: outcome.Infra, Kind: KindQEMUExited, Line: m.exitStatus(), Excerpt: tail}
	case m.poweringOff.Load():
		return nil // Shutdown asked for it
	}
	line := "the guest powered off without being asked"
	if l := lastLineWith(tail, "scxcheck-agent:"); l != "" {
		line += ": " + l
	}
	return &Verdict{Class: outcome.Agent, Kind: KindAgentExited, Line: line, Excerpt: tail}
}

// NoAnswer is the verdict on an agent call that failed with ErrNoAnswer
// while Diagnose found nothing wrong: the agent is alive as far as QEMU
// knows but does not serve. It returns nil for other errors.
func NoAnswer(err error) *Verdict {
	if !errors.Is(err, ErrNoAnswer) {
		return nil
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return &Verdict{Class: outcome.Agent, Kind: KindAgentNoAnswer, Line: line}
}

func (m *Machine) panicked(sinceFault int) bool {
	for _, f := range m.Faults()[sinceFault:] {
		if f.Kind == FaultPanic {
			return true
		}
	}
	return false
}

func signaled(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

func lastLineWith(text, sub string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

// PID is QEMU's process id (0 before it started).
func (m *Machine) PID() int {
	if m.cmd == nil || m.cmd.Process == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Dir is the machine's temporary directory, which Close removes.
func (m *Machine) Dir() string { return m.dir }
