package matchers

import (
	"strings"
	"testing"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/types"

	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
)

// Each matcher must be able to go red: these tests feed it what the kernel
// produces when the behaviour is absent and check that it fails, with a
// message that shows what was seen.

func ev(fixture, event string, kv ...string) results.TraceEvent {
	e := results.TraceEvent{Fixture: fixture, Event: event, Fields: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Fields[kv[i]] = kv[i+1]
	}
	return e
}

func match(t *testing.T, m types.GomegaMatcher, actual any) bool {
	t.Helper()
	ok, err := m.Match(actual)
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	return ok
}

func TestHaveTraced(t *testing.T) {
	trace := []results.TraceEvent{
		ev("parent", "sub_dispatch", "cgid", "47", "ret", "0"),
		ev("child", "dispatch", "n", "1"),
	}
	if !match(t, HaveTraced("parent", "sub_dispatch", WithField("cgid", 47)), trace) {
		t.Error("did not match a present event")
	}
	m := HaveTraced("parent", "sub_dispatch", WithField("cgid", "47"), WithField("ret", "1"))
	if match(t, m, trace) {
		t.Error("matched ret=1 when only ret=0 was traced")
	}
	msg := m.FailureMessage(trace)
	if !strings.Contains(msg, "sub_dispatch cgid=47 ret=0") {
		t.Errorf("failure message does not show what was seen: %s", msg)
	}
	if !strings.HasPrefix(msg, "expected a trace event parent sub_dispatch cgid=47 ret=1; 0 matched") {
		t.Errorf("failure message does not say plainly what was wanted: %s", msg)
	}
	withMatcher := HaveTraced("child", "dispatch", WithField("n", gomega.Equal("2")))
	match(t, withMatcher, trace)
	if msg, _, _ := strings.Cut(withMatcher.FailureMessage(trace), "; "); msg != `expected a trace event child dispatch n=<EqualMatcher { Expected: <string>"2", }>` {
		t.Errorf("a field matcher is not written on one line: %s", msg)
	}
	if match(t, HaveTraced("parent", "sub_dispatch", WithField("cgid", gomega.Equal("48"))), trace) {
		t.Error("matched the wrong cgroup id")
	}
	if match(t, HaveTraced("leaf", "dispatch"), trace) {
		t.Error("matched a fixture that traced nothing")
	}
	if match(t, HaveTracedAtLeast(2, "child", "dispatch"), trace) {
		t.Error("HaveTracedAtLeast(2) matched one event")
	}
	if _, err := HaveTraced("a", "b").Match("not events"); err == nil {
		t.Error("accepted a wrong actual type")
	}
}

func TestExitWith(t *testing.T) {
	distant := proto.ExitInfo{Kind: 1024, KindName: "SCX_EXIT_ERROR", Reason: "runtime error", Msg: "trying to dispatch a distant sub-sched on cgroup 47"}
	running := proto.ExitInfo{}
	unreg := proto.ExitInfo{Kind: 64, KindName: "SCX_EXIT_UNREG", Msg: "unregistered from user space"}

	if !match(t, ExitWith("SCX_EXIT_ERROR", "trying to dispatch a distant sub-sched on cgroup 47"), distant) {
		t.Error("did not match the distant-dispatch exit")
	}
	m := ExitWith("SCX_EXIT_ERROR", gomega.ContainSubstring("distant"))
	for _, absent := range []proto.ExitInfo{running, unreg} {
		if match(t, m, absent) {
			t.Errorf("matched %v", absent)
		}
	}
	if !strings.Contains(m.FailureMessage(running), "still running") {
		t.Errorf("failure message for a running scheduler: %s", m.FailureMessage(running))
	}
	if match(t, ExitWith("SCX_EXIT_ERROR", "trying to dispatch a distant sub-sched on cgroup 48"), distant) {
		t.Error("matched the wrong cgroup id in msg")
	}
	if !match(t, ExitWith("SCX_EXIT_UNREG"), unreg) {
		t.Error("did not match a kind without msg")
	}
}

func TestHaveLogged(t *testing.T) {
	log := []string{`sched_ext: BPF scheduler "parent" enabled`}
	if !match(t, HaveLogged(`BPF scheduler "parent" enabled`), log) {
		t.Error("did not match a logged line")
	}
	m := HaveLogged("dispatch recursion detected")
	if match(t, m, log) {
		t.Error("matched a line that is not there")
	}
	if !strings.Contains(m.FailureMessage(log), `"parent" enabled`) {
		t.Errorf("failure message does not show the log: %s", m.FailureMessage(log))
	}
}

// Ids and paths match as whole tokens, never as the start of a longer one.
func TestHaveLoggedWholeTokens(t *testing.T) {
	log := []string{"sched_ext: root: trying to dispatch a distant sub-sched on cgroup 470",
		`sched_ext: BPF sub-scheduler "s10" enabled on /s10`}
	for _, text := range []string{"cgroup 47", "on /s1", `"s1"`, "distant sub-sched on cgroup 4"} {
		if match(t, HaveLogged(text), log) {
			t.Errorf("HaveLogged(%q) matched a longer token", text)
		}
	}
	for _, text := range []string{"cgroup 470", "on /s10", `"s10" enabled`, "distant sub-sched", "root:"} {
		if !match(t, HaveLogged(text), log) {
			t.Errorf("HaveLogged(%q) did not match", text)
		}
	}
	// A later occurrence counts when the first is part of a longer token.
	if !match(t, HaveLogged("cgroup 47"), []string{"cgroup 470 and cgroup 47 both"}) {
		t.Error("HaveLogged missed the second occurrence")
	}
}

func TestHaveDumpHeader(t *testing.T) {
	dump := []string{"mid: sub1-47 /a", "kworker/0:1[30] triggered exit kind 1024 on CPU 1:", "  runtime error (trying to dispatch a distant sub-sched on cgroup 48)"}
	if !match(t, HaveDumpHeader("mid", "sub1-47 /a"), dump) {
		t.Error("did not match the sub-scheduler header")
	}
	if match(t, HaveDumpHeader("root", "root"), dump) {
		t.Error("matched a root header that is not there")
	}
	if match(t, HaveDumpHeader("mid", "sub2-47"), dump) {
		t.Error("matched the wrong level")
	}
	if match(t, HaveDumpHeader("mid", "sub1-4"), dump) || match(t, HaveDumpHeader("mi", "sub1-47"), []string{"mid: sub1-47 /a"}) {
		t.Error("matched a header by a prefix of its id or name")
	}
	if match(t, HaveDumpHeader("mid", "sub1-47 /a"), []string{"mid: sub1-47 /ab"}) {
		t.Error("matched a path by its prefix")
	}
}
