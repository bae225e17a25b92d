// Command scxcheck-agent is the guest agent on its own: the VM's /init. It
// links only what the guest needs, so it starts faster under emulation than
// the full scxcheck binary (which can also serve as the agent).
package main

import (
	"github.com/scxcheck/scxcheck/agent"
)

func main() {
	if agent.IsWorker() {
		agent.WorkerMain() // a workload worker the agent started
	}
	agent.Main(agent.Config{})
}
