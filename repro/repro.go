// Package repro writes reproduction bundles: a directory that replays one
// spec with nothing installed but qemu-system-x86_64 (the kernel, an
// initramfs whose /init is the scxcheck binary, the recorded QEMU command
// line, repro.sh, the expected outcome and the recorded logs), and says
// whether the replay reproduced the recorded outcome.
//
// The replay runs the spec's own code inside the guest, since its agent
// calls depend on the replies and its assertions are closures: booted with
// scxcheck.repro=<spec>, the agent serves itself in-process
// (agent.ServeLocal, vm.Local) and runs the suites focused on that spec,
// then reports the outcome on the console and a virtio-serial port for
// repro.sh to compare. A kernel panic ends the guest first: repro.sh then
// looks for the recorded fault on the console. The README's "Reproducing a
// behaviour" says what differs from the recorded run.
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
