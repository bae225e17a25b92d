package agent

import (
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestTraceReaderSplitsReadsIntoLines(t *testing.T) {
	// trace_pipe hands out at most a page a read: lines straddle reads.
	src := iotest.OneByteReader(strings.NewReader("a 1\nb 2\nc"))
	r := newTraceReader(src, 0)
	var got []string
	for {
		lines, err := r.next()
		got = append(got, lines...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a 1", "b 2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("lines = %q, want %q (an unfinished last line is not a line)", got, want)
	}
}

func TestTraceReaderWaitsOnlyAfterDrainingThePipe(t *testing.T) {
	full := strings.Repeat("x\n", drained) // a full read: more is waiting
	r := newTraceReader(strings.NewReader(full+"y\n"), 30*time.Millisecond)
	r.buf = make([]byte, len(full))
	start := time.Now()
	if _, err := r.next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.next(); err != nil { // no wait: the first read was full
		t.Fatal(err)
	}
	if d := time.Since(start); d >= 30*time.Millisecond {
		t.Errorf("two reads took %s: waited after a full read", d)
	}
	start = time.Now()
	r.next() // the second read was short: wait first
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("a read after draining the pipe came after %s, want the pace", d)
	}
}

func TestTimelineLines(t *testing.T) {
	for line, want := range map[string]bool{
		"  init-1 [000] d..31 24.16: bpf_trace_printk: scxtl sw 104 1 4 0 -1 - init":                        true,
		"  init-1 [000] d..31 24.16: bpf_trace_printk: scxtl sd 28 3 0 22568710 20455420":                   true,
		"  init-107 [001] dN.2. 37.64: bpf_trace_printk: scxtl ev 3 3 9000000 1000 SCX_EV_REFILL_SLICE_DFL": true,
		"  init-105 [001] ...1. 28.59: tracing_mark_write: scxcheck-spec begin":                             true,
		"  init-105 [001] d..31 28.59: bpf_trace_printk: scxcheck: parent dispatch n=1 moved=1":             false,
		"  kworker/0:1-12 [000] ..... 30.1: sched_ext_dump: Dump of sched_ext (runtime error)":              false,
		"  init-105 [001] ...1. 28.59: tracing_mark_write: something a user wrote into trace_marker":        false,
	} {
		if got := timelineLine(line); got != want {
			t.Errorf("timelineLine(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestTimelineRequested(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"console=ttyS0 panic=-1 scxcheck.timeline=1\n": true,
		"console=ttyS0 scxcheck.timeline=0":            false,
		"console=ttyS0 scxcheck.repro=spec":            false,
	} {
		sys := &fakeSystem{files: map[string]string{"/proc/cmdline": cmdline}}
		if got := timelineRequested(sys); got != want {
			t.Errorf("timelineRequested with %q = %v, want %v", cmdline, got, want)
		}
	}
}
