package harness

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// Timelines (Options.Timeline). The kernel command line asks the agent for
// timeline events (proto.TimelineParam): a line per context switch with the
// next task's class and owning scheduler, the sub-dispatch calls, the
// sched_ext tracepoints. The harness writes a marker into the guest's
// trace_marker where each spec begins and, after its checks, where it ends,
// and writes the timeline events it received in between, marks included,
// into the spec's timeline.txt.gz (trace_pipe lines, as package report
// reads them). Collecting never changes a verdict: a marker that cannot be
// written is logged.

const traceMarker = "/sys/kernel/tracing/trace_marker"

// timelineWait bounds the wait for the end marker to come back.
const timelineWait = 3 * time.Second

// TimelineFile is the spec artifact holding the timeline events, gzipped
// (a context switch is a line: megabytes a spec).
const TimelineFile = "timeline.txt.gz"

// timelineCmdline is the kernel parameter that asks for timelines, if the
// run wants them.
func (h *Harness) timelineCmdline() []string {
	if !h.opts.Timeline {
		return nil
	}
	return []string{proto.TimelineParam + "=1"}
}

// beginTimeline forgets the timeline events of what came before the spec
// and marks where it begins.
func (h *Harness) beginTimeline(ctx context.Context) {
	if !h.opts.Timeline || h.guest == nil {
		return
	}
	h.guest.Events().TakeTimeline()
	h.markTimeline(ctx, "begin")
}

func (h *Harness) markTimeline(ctx context.Context, what string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := h.guest.WriteString(ctx, traceMarker, proto.TimelineMarker+what+"\n"); err != nil {
		h.Log("timeline: mark the spec's %s: %v", what, err)
		return false
	}
	return true
}

// writeTimeline marks the end of the spec, waits (boundedly) for the events
// up to that mark, and writes the spec's timeline events into dir.
func (h *Harness) writeTimeline(dir string) error {
	if !h.opts.Timeline || h.guest == nil {
		return nil
	}
	g := h.guest
	evs := g.Events().TakeTimeline()
	if g.Alive() && h.markTimeline(context.Background(), "end") {
		end := proto.TimelineMarker + "end"
		for seen, deadline := 0, time.Now().Add(timelineWait); !holds(evs[seen:], end); {
			seen = len(evs)
			if time.Now().After(deadline) || !g.Alive() {
				break
			}
			time.Sleep(50 * time.Millisecond)
			evs = append(evs, g.Events().TakeTimeline()...)
		}
	}
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	for _, ev := range evs {
		z.Write([]byte(ev.Line + "\n"))
	}
	z.Close()
	if err := os.WriteFile(filepath.Join(dir, TimelineFile), b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the timeline: %w", err)
	}
	return nil
}

// holds reports whether one of the events' lines contains s.
func holds(evs []proto.Event, s string) bool {
	for _, ev := range evs {
		if strings.Contains(ev.Line, s) {
			return true
		}
	}
	return false
}
