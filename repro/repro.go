// Package repro writes reproduction bundles: a directory that replays one
// spec with nothing installed but qemu-system-x86_64, and says whether the
// replay reproduced the recorded outcome.
//
// A bundle holds the kernel image (and its .config when known), an
// initramfs whose /init is the scxcheck binary itself, the exact QEMU
// command line of the recorded run, repro.sh, the expected result, and the
// recorded run's logs.
//
// How the replay works, and why: Ginkgo specs are Go code that drive the
// guest agent over RPC and assert with Gomega matchers on what comes back.
// Recording the agent calls and replaying them would not reproduce a spec:
// its calls depend on the replies (Eventually polls until a condition
// holds, error paths branch), and its assertions are closures that cannot
// be serialised. So the replay runs the spec's own code, unchanged, inside
// the guest: repro.sh boots the bundle's kernel with scxcheck.repro=<spec>
// on the command line; the agent (the scxcheck binary, PID 1) sees the
// parameter, serves itself in-process (agent.ServeLocal), wraps that in a
// vm.Machine (vm.Local), and runs the suites focused on the one spec with
// the same Ginkgo tree, matchers, timeouts and after-spec checks as on the
// host. The outcome — state, failure class, assertion text and location —
// goes to the console and to a virtio-serial port that QEMU writes to a
// file; repro.sh compares it with the recorded one. A kernel panic ends the
// guest before it can report: repro.sh then looks for the recorded fault
// on the console instead.
//
// The differences from the recorded run: the test code shares the guest's
// CPUs with the workloads (it mostly waits: polls are in-process calls), and
// kernel faults are seen in the kernel log rather than on the serial console
// (the same lines, a little later).
package repro

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// OutcomePort is the virtio-serial port the replay writes its outcome to.
const OutcomePort = "scxcheck.outcome"

// payload identifies the spec to replay; it travels base64url-encoded as
// the value of scxcheck.repro on the kernel command line, so that one
// initramfs serves every bundle of a run.
type payload struct {
	Text   string   `json:"t"`
	Labels []string `json:"l,omitempty"`
}

func (p payload) encode() string {
	b, _ := json.Marshal(p)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePayload(s string) (payload, error) {
	var p payload
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return p, fmt.Errorf("scxcheck.repro=%.20s...: not base64url: %w", s, err)
	}
	if err := json.Unmarshal(b, &p); err != nil || p.Text == "" {
		return p, fmt.Errorf("scxcheck.repro: no spec in %q", b)
	}
	return p, nil
}

// Outcome is what a replay reports, one "scxcheck-repro: key: value" line
// per field (failure lines repeated), ending with "scxcheck-repro: end".
type Outcome struct {
	Spec     string
	State    string // Ginkgo's state, or "not-run"
	Class    string
	Location string
	Failure  string
}

const outcomePrefix = "scxcheck-repro: "

// Format renders the outcome for the console and the outcome port.
func (o Outcome) Format() string {
	var b strings.Builder
	line := func(k, v string) { fmt.Fprintf(&b, "%s%s: %s\n", outcomePrefix, k, v) }
	line("spec", o.Spec)
	line("state", o.State)
	line("class", o.Class)
	line("location", o.Location)
	for _, l := range strings.Split(strings.TrimRight(o.Failure, "\n"), "\n") {
		if l != "" {
			line("failure", l)
		}
	}
	b.WriteString(outcomePrefix + "end\n")
	return b.String()
}

// ParseOutcome reads an outcome from text that contains one (console
// output may surround it); ok is false when there is none.
func ParseOutcome(text string) (o Outcome, ok bool) {
	var fail []string
	for _, l := range strings.Split(text, "\n") {
		rest, found := strings.CutPrefix(strings.TrimRight(l, "\r"), outcomePrefix)
		if !found {
			continue
		}
		if rest == "end" {
			o.Failure = strings.Join(fail, "\n")
			return o, o.State != ""
		}
		k, v, _ := strings.Cut(rest, ": ")
		switch k {
		case "spec":
			o.Spec = v
		case "state":
			o.State = v
		case "class":
			o.Class = v
		case "location":
			o.Location = v
		case "failure":
			fail = append(fail, v)
		}
	}
	return o, false
}
