package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// eventWriter serialises events onto the events port.
type eventWriter struct {
	mu  sync.Mutex
	w   io.Writer
	enc *json.Encoder
}

func newEventWriter(w io.Writer) *eventWriter {
	return &eventWriter{w: w, enc: json.NewEncoder(w)}
}

func (e *eventWriter) send(ev proto.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.enc.Encode(ev)
}

// sendAll sends events in one write.
func (e *eventWriter) sendAll(evs []proto.Event) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, ev := range evs {
		_ = enc.Encode(ev)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b.Bytes())
}

func (e *eventWriter) agentf(format string, args ...any) {
	e.send(proto.Event{Kind: proto.EventAgent, Time: uptime(), Line: fmt.Sprintf(format, args...)})
}

// streamKmsg forwards every /dev/kmsg record, from the first one of the boot.
func streamKmsg(sys system, ev *eventWriter) {
	f, err := sys.Open("/dev/kmsg", false)
	if err != nil {
		ev.agentf("open /dev/kmsg: %v", err)
		return
	}
	defer f.Close()
	buf := make([]byte, 8192)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if strings.Contains(err.Error(), "broken pipe") { // EPIPE: records were overwritten
				continue
			}
			ev.agentf("read /dev/kmsg: %v", err)
			return
		}
		if e, ok := parseKmsg(string(buf[:n])); ok {
			ev.send(e)
		}
	}
}

// parseKmsg parses one record: "prio,seq,usec,flags;message\n KEY=value...".
func parseKmsg(rec string) (proto.Event, bool) {
	head, rest, ok := strings.Cut(rec, ";")
	if !ok {
		return proto.Event{}, false
	}
	fields := strings.Split(head, ",")
	if len(fields) < 3 {
		return proto.Event{}, false
	}
	prio, _ := strconv.Atoi(fields[0])
	usec, _ := strconv.ParseInt(fields[2], 10, 64)
	msg, _, _ := strings.Cut(rest, "\n")
	return proto.Event{Kind: proto.EventKmsg, Time: float64(usec) / 1e6, Level: prio & 7, Line: msg}, true
}

// streamTrace forwards trace_pipe lines: bpf_printk output of the fixtures and
// the sched_ext tracepoints the agent enables; with timelines (timeline.go)
// also the timeline tracer's lines, as timeline events, read at a pace.
func streamTrace(sys system, ev *eventWriter, timeline bool) {
	const tracing = "/sys/kernel/tracing"
	var pace time.Duration
	if timeline {
		pace = timelinePace
	}
	for _, event := range []string{"sched_ext/sched_ext_dump"} {
		p := tracing + "/events/" + event + "/enable"
		if err := sys.WriteFile(p, []byte("1")); err != nil && !os.IsNotExist(err) {
			ev.agentf("enable trace event %s: %v", event, err)
		}
	}
	f, err := sys.Open(tracing+"/trace_pipe", false)
	if err != nil {
		ev.agentf("open trace_pipe: %v", err)
		return
	}
	defer f.Close()
	r := newTraceReader(f, pace)
	for {
		lines, err := r.next()
		now := uptime()
		evs := make([]proto.Event, 0, len(lines))
		for _, l := range lines {
			kind := proto.EventTrace
			if timeline && timelineLine(l) {
				kind = proto.EventTimeline
			}
			evs = append(evs, proto.Event{Kind: kind, Time: now, Line: l})
		}
		if len(evs) > 0 {
			ev.sendAll(evs)
		}
		if err != nil {
			ev.agentf("read trace_pipe: %v", err)
			return
		}
	}
}
