package agent

import (
	"errors"
	"io"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/fixtures"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/sched"
)

// Timelines. When the kernel command line holds proto.TimelineParam=1 (the host
// asks for it for a run that writes a report), the agent attaches the
// timeline tracer (fixtures/timeline.bpf.c: a line at a context switch with
// the next task's class and owning scheduler, counts of the sub-dispatch
// calls and sched_ext events per 10 ms) and streams its lines as
// proto.EventTimeline events rather than EventTrace, so that the specs'
// reads of the trace never see them. The trace clock becomes "global", the
// kernel log's, so that the report can put both on one axis. Without the parameter nothing of this
// runs and trace_pipe is streamed as before.

// timelinePace is how long the trace reader waits after it has drained
// trace_pipe, when timelines are on: every wake-up of the reader is itself
// a context switch, which would wake it again at once.
const timelinePace = 100 * time.Millisecond

// cmdlineParam returns a parameter's value from /proc/cmdline.
func cmdlineParam(sys system, name string) (string, bool) {
	b, err := sys.ReadFile("/proc/cmdline")
	if err != nil {
		return "", false
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// timelineRequested reports whether the host asked for timelines.
func timelineRequested(sys system) bool {
	v, ok := cmdlineParam(sys, proto.TimelineParam)
	return ok && v == "1"
}

// startTimeline attaches the timeline tracer; the caller keeps it (a
// tracer no longer referenced is detached by its finalizers). It says on
// the event stream what it could not do; timelines are then missing from
// the report, the run goes on.
func startTimeline(sys system, ev *eventWriter) *sched.Timeline {
	// The trace clock the kernel log's timestamps are on (local_clock):
	// trace_pipe's default, "local", is sched_clock() without the offset
	// and per-CPU corrections, tens of milliseconds off under TCG.
	if err := sys.WriteFile("/sys/kernel/tracing/trace_clock", []byte("global")); err != nil {
		ev.agentf("timeline: set the trace clock: %v", err)
	}
	kallsyms, err := sys.ReadFile("/proc/kallsyms")
	if err != nil {
		ev.agentf("timeline: read /proc/kallsyms: %v", err)
	}
	spec, err := fixtures.TimelineSpec()
	if err != nil {
		ev.agentf("timeline: %v", err)
		return nil
	}
	t, err := sched.LoadTimeline(spec, sched.ClassAddrs(kallsyms))
	if err != nil {
		ev.agentf("timeline: %v", err)
		return nil
	}
	for prog, why := range t.Missing {
		ev.agentf("timeline: %s not traced: %s", prog, why)
	}
	return t
}

// timelineLine reports whether a trace_pipe line is one of the timeline's:
// the tracer's, or a spec marker the host wrote into trace_marker.
func timelineLine(line string) bool {
	for _, s := range []string{"bpf_trace_printk: scxtl ", "tracing_mark_write: " + proto.TimelineMarker} {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// traceReader reads trace_pipe in chunks and splits them into lines. With a
// pace, after a read that drained the pipe (a short one) it waits that long
// before the next.
type traceReader struct {
	r    io.Reader
	pace time.Duration
	buf  []byte
	part []byte // an incomplete last line, carried to the next read
	wait bool
}

// drained is a read shorter than this: trace_pipe returns at most a page.
const drained = 2048

func newTraceReader(r io.Reader, pace time.Duration) *traceReader {
	return &traceReader{r: r, pace: pace, buf: make([]byte, 64<<10)}
}

// next returns the complete lines of the next read.
func (t *traceReader) next() ([]string, error) {
	if t.wait && t.pace > 0 {
		time.Sleep(t.pace)
	}
	n, err := t.r.Read(t.buf)
	t.wait = n < drained
	data := append(t.part, t.buf[:n]...)
	i := strings.LastIndexByte(string(data), '\n')
	if i < 0 {
		t.part = data
		return nil, err
	}
	lines := strings.Split(string(data[:i]), "\n")
	t.part = append([]byte(nil), data[i+1:]...)
	if errors.Is(err, io.EOF) && len(lines) > 0 {
		err = nil // the lines first; the next read says EOF again
	}
	return lines, err
}
