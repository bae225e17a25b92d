package proto

import "time"

// Fault actions: test-only misbehaviours of the agent itself, for the specs
// that check how scxcheck reports a broken guest.
const (
	// FaultExit makes the agent (PID 1) exit: the kernel panics with
	// "Attempted to kill init!".
	FaultExit = "exit"
	// FaultStop freezes the agent as SIGSTOP would (PID 1 ignores SIGSTOP,
	// so it moves itself into a cgroup and freezes that): it stays alive
	// and answers nothing more.
	FaultStop = "stop"
)

// Fault asks the agent to misbehave. The agent answers first and acts After
// later, so that the call itself succeeds.
type Fault struct {
	Action string
	After  time.Duration
}
