package repro

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/agent"
	"github.com/scxcheck/scxcheck/suites"
	"github.com/scxcheck/scxcheck/vm"
)

// ReplayInGuest runs inside the guest, as PID 1, when the kernel command
// line has scxcheck.repro=<payload> (agent.Config.Replay): it serves the
// agent in-process, runs the one spec with the suites as the host would,
// prints the outcome on the console and the outcome port, and powers off.
func ReplayInGuest(value string) error {
	p, err := decodePayload(value)
	if err != nil {
		return err
	}
	fmt.Printf("%sreplaying %q\n", outcomePrefix, p.Text)
	o := runInGuest(p)
	out := o.Format()
	os.Stdout.WriteString(out)
	if port, err := agent.OpenPort(OutcomePort); err == nil {
		io.WriteString(port, out)
		if f, ok := port.(*os.File); ok {
			f.Sync()
		}
		port.Close()
	}
	time.Sleep(100 * time.Millisecond) // let the port drain to the host
	agent.PowerOff()
	return nil
}

type fakeT struct{}

func (fakeT) Fail() {}

func runInGuest(p payload) Outcome {
	o := Outcome{Spec: p.Text, State: "not-run"}
	hostEnd, agentEnd := net.Pipe()
	evR, evW := io.Pipe()
	go func() {
		err := agent.ServeLocal(agentEnd, evW)
		evW.CloseWithError(err)
	}()
	m, err := vm.Local(hostEnd, evR, "/tmp")
	if err != nil {
		o.Failure = err.Error()
		return o
	}
	booted := false
	var rec *harness.SpecRecord
	opts := harness.Options{
		Kernel: "the running kernel",
		Log:    func(format string, args ...any) { fmt.Printf("scxcheck: "+format+"\n", args...) },
		OnSpec: func(r harness.SpecRecord) { rec = &r },
		Boot: func(context.Context) (*vm.Machine, error) {
			if booted {
				return nil, errors.New("the replay has one boot: a VM that needs replacing ends it")
			}
			booted = true
			return m, nil
		},
	}
	sc := types.NewDefaultSuiteConfig()
	// Ginkgo matches focus against "<suite description> <spec text>".
	sc.FocusStrings = []string{"^[^ ]+ " + regexp.QuoteMeta(p.Text) + "$"}
	if slices.Contains(p.Labels, harness.SelftestLabel) {
		sc.LabelFilter = harness.SelftestLabel
	}
	sc.Timeout = 30 * time.Minute
	rc := types.NewDefaultReporterConfig()
	rc.Verbose, rc.NoColor = true, true
	res := suites.Run(fakeT{}, opts, sc, rc)
	switch {
	case rec != nil:
		o.State, o.Class, o.Location, o.Failure = rec.State, string(rec.Class), rec.Location, rec.Failure
	case res.Infra != nil:
		o.Failure = res.Infra.Error()
	default:
		o.Failure = "no spec matched: this scxcheck binary does not have the spec"
	}
	return o
}
