package sched

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// TimelineClasses are the kernel's scheduling classes the timeline tracer
// tells apart, in the order of its class_addr rodata array (class numbers
// 1 to 6 in its trace lines; 0 is a class it does not know).
var TimelineClasses = [...]string{"stop", "dl", "rt", "fair", "ext", "idle"}

// ClassAddrs finds the address of each of TimelineClasses' sched_class
// symbols (stop_sched_class, ...) in the text of /proc/kallsyms; a class
// not found is 0.
func ClassAddrs(kallsyms []byte) [len(TimelineClasses)]uint64 {
	var out [len(TimelineClasses)]uint64
	want := map[string]int{}
	for i, c := range TimelineClasses {
		want[c+"_sched_class"] = i
	}
	sc := bufio.NewScanner(bytes.NewReader(kallsyms))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		i, ok := want[f[2]]
		if !ok {
			continue
		}
		if a, err := strconv.ParseUint(f[0], 16, 64); err == nil {
			out[i] = a
		}
	}
	return out
}

// Timeline is the timeline tracer (fixtures.TimelineSpec), attached: it
// prints a trace_pipe line at a context switch and counts of the
// sub-dispatch calls and sched_ext events per 10 ms.
type Timeline struct {
	coll  *ebpf.Collection
	links []link.Link
	// Missing says, per optional program, why it is not attached.
	Missing map[string]string
}

// The tracer's programs: switchProg is required, the others count what a
// kernel may not have (scx_bpf_sub_dispatch, the sched_ext_event
// tracepoint).
const switchProg = "switch_to"

var optionalProgs = []string{"sub_dispatch_exit", "ext_event"}

// LoadTimeline loads the timeline tracer from its spec with the class
// addresses (ClassAddrs) and attaches it. The optional programs are left
// out when the kernel refuses them; Missing says why.
func LoadTimeline(spec *ebpf.CollectionSpec, classes [len(TimelineClasses)]uint64) (*Timeline, error) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("sched: timeline tracer: %w", err)
	}
	for name, value := range map[string]any{"class_addr": classes, "nr_cpus": uint32(cpus)} {
		v := spec.Variables[name]
		if v == nil {
			return nil, fmt.Errorf("sched: the timeline tracer has no %s", name)
		}
		if err := v.Set(value); err != nil {
			return nil, fmt.Errorf("sched: set the timeline tracer's %s: %w", name, err)
		}
	}
	t := &Timeline{Missing: map[string]string{}}
	var coll *ebpf.Collection
	for {
		coll, err = ebpf.NewCollection(spec)
		if err == nil {
			break
		}
		// The error names the program the kernel refused.
		refused := ""
		for _, p := range optionalProgs {
			if spec.Programs[p] != nil && strings.Contains(err.Error(), "program "+p) {
				refused = p
			}
		}
		if refused == "" {
			return nil, fmt.Errorf("sched: load the timeline tracer: %w", err)
		}
		t.Missing[refused] = firstLine(err.Error())
		delete(spec.Programs, refused)
	}
	t.coll = coll
	for _, name := range append([]string{switchProg}, optionalProgs...) {
		prog := coll.Programs[name]
		if prog == nil {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil && name != switchProg {
			t.Missing[name] = firstLine(err.Error())
			continue
		}
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("sched: attach the timeline tracer's %s: %w", name, err)
		}
		t.links = append(t.links, l)
	}
	return t, nil
}

// Close detaches and releases the tracer.
func (t *Timeline) Close() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.coll.Close()
	return errors.Join(errs...)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
