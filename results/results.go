// Package results turns what the guest streams into typed values the specs
// assert on: fixture trace events parsed from trace_pipe, kernel log lines,
// and sched_ext debug-dump records.
//
// The fixtures trace in one grammar (fixtures/include/scxcheck.h):
//
//	scxcheck: <fixture> <event> key=value key=value ...
//
// where <fixture> is the scheduler instance's name given at load time.
package results

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/proto"
)

// TraceEvent is one fixture trace line.
type TraceEvent struct {
	// CPU the line was traced on, and the guest's trace clock in seconds.
	CPU  int
	Time float64
	// Task that was running: comm and pid.
	Comm string
	PID  int
	// Fixture is the scheduler instance's name, Event what happened.
	Fixture, Event string
	// Fields are the key=value pairs after the event.
	Fields map[string]string
	// Raw is the whole trace_pipe line.
	Raw string
}

// Field returns a field's value, "" if absent.
func (e TraceEvent) Field(k string) string { return e.Fields[k] }

// Int returns a field as an integer, or an error naming the event.
func (e TraceEvent) Int(k string) (int64, error) {
	v, ok := e.Fields[k]
	if !ok {
		return 0, fmt.Errorf("trace event %s %s has no field %s", e.Fixture, e.Event, k)
	}
	return strconv.ParseInt(v, 0, 64)
}

func (e TraceEvent) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d] %.6f %s %s", e.CPU, e.Time, e.Fixture, e.Event)
	for _, k := range sortedKeys(e.Fields) {
		fmt.Fprintf(&b, " %s=%s", k, e.Fields[k])
	}
	return b.String()
}

// TracePrefix starts every fixture trace payload.
const TracePrefix = "scxcheck: "

// TraceLine is any trace_pipe line in the default format.
type TraceLine struct {
	// Comm and PID are the task that was running, CPU the one traced on.
	Comm     string
	PID, CPU int
	// Time is the trace clock in seconds.
	Time float64
	// Event is the tracepoint's name (bpf_trace_printk for bpf_printk),
	// Payload what follows it.
	Event, Payload string
}

// ParseTraceLine parses a trace_pipe line in its default format,
//
//	<comm>-<pid> [(<tgid>)] [<cpu>] <flags> <seconds>: <event>: <payload>
//
// ok is false for other lines (e.g. a lost-events notice). It is a loop
// over the line, not a regular expression: a run with timelines has tens of
// thousands of lines a spec.
func ParseTraceLine(line string) (l TraceLine, ok bool) {
	// "[<cpu>]", after a space: the first such field (a comm could hold one
	// only in a way no kernel thread or workload names itself).
	open, end := -1, -1
	for i := 1; i < len(line) && open < 0; i++ {
		if line[i] != '[' || line[i-1] != ' ' {
			continue
		}
		j := i + 1
		for j < len(line) && line[j] >= '0' && line[j] <= '9' {
			j++
		}
		if j > i+1 && j+1 < len(line) && line[j] == ']' && line[j+1] == ' ' {
			open, end = i, j
		}
	}
	if open < 0 {
		return l, false
	}
	head := strings.TrimSpace(line[:open])
	if strings.HasSuffix(head, ")") { // the tgid column of options/record-tgid
		if k := strings.LastIndexByte(head, '('); k >= 0 {
			head = strings.TrimSpace(head[:k])
		}
	}
	dash := strings.LastIndexByte(head, '-')
	if dash < 0 {
		return l, false
	}
	var err error
	if l.PID, err = strconv.Atoi(head[dash+1:]); err != nil {
		return l, false
	}
	l.Comm = strings.TrimSpace(head[:dash])
	l.CPU, _ = strconv.Atoi(line[open+1 : end])
	rest := strings.TrimLeft(line[end+1:], " ")
	sp := strings.IndexByte(rest, ' ') // after the flags
	if sp < 0 {
		return l, false
	}
	rest = strings.TrimLeft(rest[sp:], " ")
	colon := strings.IndexByte(rest, ':')
	if colon < 0 || !strings.Contains(rest[:colon], ".") {
		return l, false
	}
	if l.Time, err = strconv.ParseFloat(rest[:colon], 64); err != nil {
		return l, false
	}
	rest = strings.TrimLeft(rest[colon+1:], " ")
	colon = strings.IndexByte(rest, ':')
	if colon <= 0 {
		return l, false
	}
	l.Event = rest[:colon]
	l.Payload = strings.TrimPrefix(rest[colon+1:], " ")
	return l, true
}

// ParseTrace parses a trace_pipe line carrying a fixture event; ok is false
// for other lines.
func ParseTrace(line string) (ev TraceEvent, ok bool) {
	l, ok := ParseTraceLine(line)
	if !ok {
		return ev, false
	}
	ev, ok = l.Fixture()
	ev.Raw = line
	return ev, ok
}

// Fixture parses the line's payload as a fixture event; ok is false for
// other payloads. Raw is left empty.
func (l TraceLine) Fixture() (ev TraceEvent, ok bool) {
	payload, found := strings.CutPrefix(l.Payload, TracePrefix)
	if !found {
		return ev, false
	}
	words := strings.Fields(payload)
	if len(words) < 2 {
		return ev, false
	}
	ev = TraceEvent{Comm: l.Comm, PID: l.PID, CPU: l.CPU, Time: l.Time, Fixture: words[0], Event: words[1], Fields: map[string]string{}}
	for _, w := range words[2:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			ev.Fields[k] = v
		}
	}
	return ev, true
}

// TraceEvents parses the fixture events among streamed events.
func TraceEvents(events []proto.Event) []TraceEvent {
	var out []TraceEvent
	for _, e := range events {
		if e.Kind != proto.EventTrace {
			continue
		}
		if ev, ok := ParseTrace(e.Line); ok {
			out = append(out, ev)
		}
	}
	return out
}

// DumpLines returns the payloads of sched_ext_dump trace lines: the debug
// dump the kernel writes on an error exit.
func DumpLines(events []proto.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind != proto.EventTrace {
			continue
		}
		if l, ok := ParseTraceLine(e.Line); ok && l.Event == "sched_ext_dump" {
			out = append(out, l.Payload)
		}
	}
	return out
}

// KernelLog returns the text of the kmsg records among streamed events.
func KernelLog(events []proto.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind == proto.EventKmsg {
			out = append(out, e.Line)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
