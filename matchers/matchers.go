// Package matchers holds the Gomega matchers scxcheck's specs are written
// with, so a spec reads like the behaviour it checks:
//
//	Eventually(g.Trace).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", id), WithField("ret", "1")))
//	Eventually(child.Exit).Should(ExitWith("SCX_EXIT_ERROR", ContainSubstring("parent rejected (-28)")))
//	Eventually(g.KernelLog).Should(HaveLogged(`BPF sub-scheduler "child" enabled`))
//
// Every matcher prints what it saw when it fails.
package matchers

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/onsi/gomega"
	"github.com/onsi/gomega/format"
	"github.com/onsi/gomega/types"

	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
)

// FieldMatcher constrains one field of a trace event.
type FieldMatcher struct {
	Key   string
	Value types.GomegaMatcher
	text  string // the exact text WithField was given, for messages
}

// WithField requires a trace event field. value is a string (exact match),
// an integer (compared as decimal text), or a Gomega matcher on the text.
func WithField(key string, value any) FieldMatcher {
	switch v := value.(type) {
	case types.GomegaMatcher:
		return FieldMatcher{Key: key, Value: v}
	case string:
		return FieldMatcher{Key: key, Value: gomega.Equal(v), text: v}
	default:
		return FieldMatcher{Key: key, Value: gomega.Equal(fmt.Sprint(v)), text: fmt.Sprint(v)}
	}
}

// HaveTraced succeeds if a []results.TraceEvent holds an event of fixture
// with the given name whose fields match.
func HaveTraced(fixture, event string, fields ...FieldMatcher) types.GomegaMatcher {
	return &tracedMatcher{fixture: fixture, event: event, fields: fields, min: 1}
}

// HaveTracedAtLeast is HaveTraced requiring n matching events.
func HaveTracedAtLeast(n int, fixture, event string, fields ...FieldMatcher) types.GomegaMatcher {
	return &tracedMatcher{fixture: fixture, event: event, fields: fields, min: n}
}

type tracedMatcher struct {
	fixture, event string
	fields         []FieldMatcher
	min            int
	seen           []results.TraceEvent // of the same fixture, for the failure message
	count          int
}

func (m *tracedMatcher) Match(actual any) (bool, error) {
	evs, ok := actual.([]results.TraceEvent)
	if !ok {
		return false, fmt.Errorf("HaveTraced expects []results.TraceEvent, got %T", actual)
	}
	m.seen, m.count = nil, 0
	for _, ev := range evs {
		if ev.Fixture != m.fixture {
			continue
		}
		m.seen = append(m.seen, ev)
		if ev.Event != m.event {
			continue
		}
		if ok, err := m.fieldsMatch(ev); err != nil {
			return false, err
		} else if ok {
			m.count++
		}
	}
	return m.count >= m.min, nil
}

func (m *tracedMatcher) fieldsMatch(ev results.TraceEvent) (bool, error) {
	for _, f := range m.fields {
		v, ok := ev.Fields[f.Key]
		if !ok {
			return false, nil
		}
		if ok, err := f.Value.Match(v); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// matcherHeader is how format.Object starts a matcher: <*pkg.Type | 0xaddr>:
var matcherHeader = regexp.MustCompile(`^<\*\w+\.(\w+) \| 0x[0-9a-f]+>: `)

func (m *tracedMatcher) want() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", m.fixture, m.event)
	for _, f := range m.fields {
		if f.text != "" {
			fmt.Fprintf(&b, " %s=%s", f.Key, f.text)
		} else {
			obj := matcherHeader.ReplaceAllString(format.Object(f.Value, 0), "$1 ")
			fmt.Fprintf(&b, " %s=<%s>", f.Key, strings.Join(strings.Fields(obj), " "))
		}
	}
	if m.min > 1 {
		fmt.Fprintf(&b, " (at least %d times)", m.min)
	}
	return b.String()
}

func (m *tracedMatcher) FailureMessage(any) string {
	return fmt.Sprintf("expected a trace event %s; %d matched. %s", m.want(), m.count, seenEvents(m.fixture, m.seen))
}

func (m *tracedMatcher) NegatedFailureMessage(any) string {
	return fmt.Sprintf("expected no trace event %s, but %d matched. %s", m.want(), m.count, seenEvents(m.fixture, m.seen))
}

func seenEvents(fixture string, seen []results.TraceEvent) string {
	if len(seen) == 0 {
		return fmt.Sprintf("Fixture %q traced nothing.", fixture)
	}
	const last = 25
	var b strings.Builder
	fmt.Fprintf(&b, "Fixture %q traced %d events", fixture, len(seen))
	if len(seen) > last {
		fmt.Fprintf(&b, ", the last %d", last)
		seen = seen[len(seen)-last:]
	}
	b.WriteString(":")
	for _, ev := range seen {
		b.WriteString("\n    " + ev.String())
	}
	return b.String()
}

// ExitWith succeeds if a proto.ExitInfo has the exit kind named (its BTF
// enum name, e.g. "SCX_EXIT_ERROR") and, if given, a msg matching msg (a
// string for equality, or a Gomega matcher).
func ExitWith(kind string, msg ...any) types.GomegaMatcher {
	m := &exitMatcher{kind: kind}
	if len(msg) > 0 {
		if gm, ok := msg[0].(types.GomegaMatcher); ok {
			m.msg = gm
		} else {
			m.msg = gomega.Equal(fmt.Sprint(msg[0]))
		}
	}
	return m
}

type exitMatcher struct {
	kind string
	msg  types.GomegaMatcher
}

func (m *exitMatcher) Match(actual any) (bool, error) {
	info, ok := actual.(proto.ExitInfo)
	if !ok {
		return false, fmt.Errorf("ExitWith expects proto.ExitInfo, got %T", actual)
	}
	if info.KindName != m.kind {
		return false, nil
	}
	if m.msg == nil {
		return true, nil
	}
	return m.msg.Match(info.Msg)
}

func (m *exitMatcher) want() string {
	s := m.kind
	if m.msg != nil {
		s += " with msg " + strings.TrimSpace(format.Object(m.msg, 0))
	}
	return s
}

func (m *exitMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected an exit %s, got %s", m.want(), describeExit(actual))
}

func (m *exitMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected no exit %s, got %s", m.want(), describeExit(actual))
}

func describeExit(actual any) string {
	info, ok := actual.(proto.ExitInfo)
	if !ok {
		return fmt.Sprintf("%T", actual)
	}
	if info.Kind == 0 {
		return "no exit (the scheduler is still running, kind SCX_EXIT_NONE)"
	}
	return info.String()
}

// HaveLogged succeeds if a []string of kernel log lines has a line
// containing text (a string) as whole tokens, or matching a Gomega matcher.
// Whole tokens: where text begins or ends with a letter or digit, the line
// must not continue it with another, so "cgroup 47" does not match
// "cgroup 470" and "/s1" does not match "/s10".
func HaveLogged(text any) types.GomegaMatcher {
	if gm, ok := text.(types.GomegaMatcher); ok {
		return &loggedMatcher{what: "kernel log line", desc: strings.TrimSpace(format.Object(gm, 0)), match: gm.Match}
	}
	t := fmt.Sprint(text)
	return &loggedMatcher{what: "kernel log line", desc: fmt.Sprintf("containing %q", t),
		match: func(line any) (bool, error) { return containsTokens(line.(string), t), nil }}
}

func containsTokens(line, text string) bool {
	if text == "" {
		return true
	}
	for off := 0; ; {
		i := strings.Index(line[off:], text)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(text)
		okStart := start == 0 || !isWord(text[0]) || !isWord(line[start-1])
		okEnd := end == len(line) || !isWord(text[len(text)-1]) || !isWord(line[end])
		if okStart && okEnd {
			return true
		}
		off = start + 1
	}
}

func isWord(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

type loggedMatcher struct {
	what, desc string
	match      func(line any) (bool, error)
}

func (m *loggedMatcher) Match(actual any) (bool, error) {
	lines, ok := actual.([]string)
	if !ok {
		return false, fmt.Errorf("HaveLogged expects []string, got %T", actual)
	}
	for _, l := range lines {
		if ok, err := m.match(l); err != nil {
			return false, err
		} else if ok {
			return true, nil
		}
	}
	return false, nil
}

func (m *loggedMatcher) FailureMessage(actual any) string {
	return fmt.Sprintf("expected a %s %s, in:\n%s", m.what, m.desc, tail(actual))
}

func (m *loggedMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("expected no %s %s, in:\n%s", m.what, m.desc, tail(actual))
}

func tail(actual any) string {
	lines, _ := actual.([]string)
	const n = 30
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// HaveDumpHeader succeeds if sched_ext_dump lines ([]string) hold the header
// the kernel writes for scheduler name: "<name>: root" for the root, or
// "<name>: sub<level>-<cgid> <path>" for a sub-scheduler (pass that part as
// which, e.g. "sub1-47 /a").
func HaveDumpHeader(name, which string) types.GomegaMatcher {
	want := name + ": " + which
	return &loggedMatcher{what: "sched_ext dump header", desc: fmt.Sprintf("%q", want),
		match: func(line any) (bool, error) {
			rest, ok := strings.CutPrefix(line.(string), want)
			return ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t'), nil
		}}
}
