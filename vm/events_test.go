package vm

import (
	"strings"
	"testing"
)

func TestEventLogKeepsTimelineEventsApart(t *testing.T) {
	l := newEventLog()
	l.readFrom(strings.NewReader(`{"k":"trace","t":1,"s":"a fixture line"}
{"k":"timeline","t":1,"s":"a switch"}
{"k":"kmsg","t":2,"s":"a log line"}
{"k":"timeline","t":2,"s":"another switch"}
`))
	if got := l.Lines(0, "trace"); len(got) != 1 {
		t.Errorf("trace lines = %q", got)
	}
	if n := len(l.Since(0)); n != 2 {
		t.Errorf("Since(0) has %d events, want 2: timeline events stay out of the specs' reads", n)
	}
	if got := l.TakeTimeline(); len(got) != 2 || got[1].Line != "another switch" {
		t.Errorf("TakeTimeline = %v", got)
	}
	if got := l.TakeTimeline(); len(got) != 0 {
		t.Errorf("a second TakeTimeline = %v, want nothing", got)
	}
}
