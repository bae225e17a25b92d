package suites_test

import (
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"

	"github.com/scxcheck/scxcheck/agent"
	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/suites"
)

func TestMain(m *testing.M) {
	switch {
	case agent.IsWorker():
		agent.WorkerMain() // a workload worker the agent started
	case os.Getpid() == 1:
		agent.Main(agent.Config{}) // this binary is the VM's init
	}
	os.Exit(m.Run())
}

func TestSuites(t *testing.T) {
	opts, err := harness.OptionsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	suiteConfig, reporterConfig := GinkgoConfiguration()
	res := suites.Run(t, opts, suiteConfig, reporterConfig)
	t.Log("\n" + res.Summary())
	if res.Infra != nil {
		t.Fatalf("infrastructure: %v", res.Infra)
	}
}
