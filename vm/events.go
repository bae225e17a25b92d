package vm

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"
	"sync"

	"github.com/scxcheck/scxcheck/proto"
)

// EventLog holds every event the agent streamed, in arrival order. Specs take
// a Mark before acting and read what came after it. Timeline events
// (proto.EventTimeline, many) are kept apart, out of the specs' reads, until
// TakeTimeline.
type EventLog struct {
	mu       sync.Mutex
	events   []proto.Event
	timeline []proto.Event
	ready    chan struct{}
	once     sync.Once
}

func newEventLog() *EventLog {
	return &EventLog{ready: make(chan struct{})}
}

func (l *EventLog) readFrom(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev proto.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			ev = proto.Event{Kind: proto.EventAgent, Line: "undecodable event: " + sc.Text()}
		}
		l.mu.Lock()
		if ev.Kind == proto.EventTimeline {
			l.timeline = append(l.timeline, ev)
		} else {
			l.events = append(l.events, ev)
		}
		l.mu.Unlock()
		if ev.Kind == proto.EventReady {
			l.once.Do(func() { close(l.ready) })
		}
	}
}

// Mark returns a position in the log; Since(mark) returns what follows it.
func (l *EventLog) Mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// Since returns the events after mark, optionally only those of the given
// kinds.
func (l *EventLog) Since(mark int, kinds ...string) []proto.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	if mark > len(l.events) {
		mark = len(l.events)
	}
	var out []proto.Event
	for _, ev := range l.events[mark:] {
		if len(kinds) == 0 || slices.Contains(kinds, ev.Kind) {
			out = append(out, ev)
		}
	}
	return out
}

// Lines returns the text of the events of one kind after mark.
func (l *EventLog) Lines(mark int, kind string) []string {
	evs := l.Since(mark, kind)
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Line
	}
	return out
}

// TakeTimeline returns the timeline events that arrived since the last
// call, and forgets them.
func (l *EventLog) TakeTimeline() []proto.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.timeline
	l.timeline = nil
	return out
}
