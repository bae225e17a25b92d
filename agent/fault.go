package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// stoppedCgroup is where FaultStop freezes the agent.
const stoppedCgroup = "/sys/fs/cgroup/scxcheck-agent-stopped"

// Fault makes the agent misbehave on purpose (see proto.Fault): the specs
// that check how the host reports a dead or stopped agent use it. It answers
// before acting.
func (s *Service) Fault(args proto.Fault, _ *proto.Empty) error {
	var act func()
	switch args.Action {
	case proto.FaultExit:
		act = func() {
			fmt.Fprintln(os.Stderr, "scxcheck-agent: exiting on request (test fault)")
			os.Exit(3)
		}
	case proto.FaultStop:
		// Prepare now, so that a failure is the call's error.
		if err := os.Mkdir(stoppedCgroup, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("stop agent: %w", err)
		}
		act = func() {
			fmt.Fprintln(os.Stderr, "scxcheck-agent: freezing on request (test fault)")
			err := os.WriteFile(filepath.Join(stoppedCgroup, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0)
			if err == nil {
				err = os.WriteFile(filepath.Join(stoppedCgroup, "cgroup.freeze"), []byte("1"), 0)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "scxcheck-agent: cannot freeze: %v\n", err)
			}
		}
	default:
		return fmt.Errorf("unknown fault %q", args.Action)
	}
	after := max(args.After, 100*time.Millisecond) // let the answer leave first
	time.AfterFunc(after, act)
	return nil
}
