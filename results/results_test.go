package results

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/proto"
)

func TestParseTrace(t *testing.T) {
	line := "          <idle>-0       [001] d.h2.   12.345678: bpf_trace_printk: scxcheck: parent sub_dispatch cgid=47 ret=1"
	ev, ok := ParseTrace(line)
	if !ok {
		t.Fatalf("ParseTrace(%q) failed", line)
	}
	if ev.CPU != 1 || ev.Time != 12.345678 || ev.Comm != "<idle>" || ev.PID != 0 ||
		ev.Fixture != "parent" || ev.Event != "sub_dispatch" || ev.Field("cgid") != "47" || ev.Field("ret") != "1" {
		t.Errorf("parsed %+v", ev)
	}
	if n, err := ev.Int("cgid"); err != nil || n != 47 {
		t.Errorf("Int(cgid) = %d, %v", n, err)
	}
	if _, err := ev.Int("nope"); err == nil {
		t.Error("Int of a missing field succeeded")
	}

	withDash := " kworker/u8:2-mm-55    [000] .....    3.000001: bpf_trace_printk: scxcheck: child dispatch n=3"
	if ev, ok := ParseTrace(withDash); !ok || ev.Comm != "kworker/u8:2-mm" || ev.PID != 55 || ev.Event != "dispatch" {
		t.Errorf("ParseTrace(%q) = %+v, %v", withDash, ev, ok)
	}

	for _, other := range []string{
		"  sh-1 [000] ..... 1.0: bpf_trace_printk: something else",
		"  sh-1 [000] ..... 1.0: bpf_trace_printk: scxcheck: lonely",
		"garbage",
	} {
		if _, ok := ParseTrace(other); ok {
			t.Errorf("ParseTrace(%q) accepted a non-fixture line", other)
		}
	}
}

func TestDumpLinesAndKernelLog(t *testing.T) {
	evs := []proto.Event{
		{Kind: proto.EventTrace, Line: " kworker/0:1-30 [000] .....  5.120000: sched_ext_dump: parent: root"},
		{Kind: proto.EventTrace, Line: " kworker/0:1-30 [000] .....  5.120001: bpf_trace_printk: scxcheck: parent exit kind=1024"},
		{Kind: proto.EventKmsg, Line: `sched_ext: BPF scheduler "parent" disabled (runtime error)`},
	}
	if d := DumpLines(evs); len(d) != 1 || d[0] != "parent: root" {
		t.Errorf("DumpLines = %q", d)
	}
	if k := KernelLog(evs); len(k) != 1 {
		t.Errorf("KernelLog = %q", k)
	}
	if tr := TraceEvents(evs); len(tr) != 1 || tr[0].Field("kind") != "1024" {
		t.Errorf("TraceEvents = %v", tr)
	}
}

// traceLineRE is trace_pipe's default format as the regular expression
// ParseTraceLine replaced; ParseTraceLine must agree with it.
var traceLineRE = regexp.MustCompile(`^\s*(.*)-(\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+\S+\s+(\d+\.\d+):\s+([\w:]+):\s?(.*)$`)

func TestParseTraceLineAgreesWithTheFormat(t *testing.T) {
	for _, line := range []string{
		"          <idle>-0       [001] d.h2.   12.345678: bpf_trace_printk: scxcheck: parent sub_dispatch cgid=47 ret=1",
		" kworker/u8:2-mm-55    [000] .....    3.000001: bpf_trace_printk: scxcheck: child dispatch n=3",
		" scx_enable_help-110     [000] ...11   452.072860: bpf_trace_printk: scxcheck: parent init dsq=1 ret=0",
		"            init-105     [001] ...1.    28.598079: tracing_mark_write: scxcheck-spec begin",
		"            init-107     [001] dN.2.    37.648621: sched_ext_event: name SCX_EV_DISPATCH_KEEP_LAST delta 1",
		"           <...>-112     [000] ...11    36.950142: bpf_trace_printk: scxcheck: parent init",
		"     rcu_preempt-15      (     15) [001] d..31   452.313063: bpf_trace_printk: scxtl sw 0 0 6 0 -1 - swapper/1",
		"  my prog-1234 [003] ..... 1.500000: sched_ext_dump: line with: colons",
		"  sh-1 [000] ..... 1.0: bpf_trace_printk:",
		"CPU:1 [LOST 123 EVENTS]",
		"garbage",
		"  sh-x [000] ..... 1.0: bpf_trace_printk: no pid",
		"  sh-1 [000] ..... 10: bpf_trace_printk: no fraction",
	} {
		l, ok := ParseTraceLine(line)
		m := traceLineRE.FindStringSubmatch(line)
		if ok != (m != nil) {
			t.Errorf("ParseTraceLine(%q) ok = %v, the format says %v", line, ok, m != nil)
			continue
		}
		if !ok {
			continue
		}
		pid, _ := strconv.Atoi(m[2])
		cpu, _ := strconv.Atoi(m[3])
		ts, _ := strconv.ParseFloat(m[4], 64)
		want := TraceLine{Comm: strings.TrimSpace(m[1]), PID: pid, CPU: cpu, Time: ts, Event: m[5], Payload: m[6]}
		if l != want {
			t.Errorf("ParseTraceLine(%q) = %+v, want %+v", line, l, want)
		}
	}
}
