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
// prints a trace_pipe line at every context switch and, where the kernel
// has scx_bpf_sub_dispatch, the sub-dispatch calls per 10 ms.
type Timeline struct {
	coll  *ebpf.Collection
	links []link.Link
	// NoSubDispatch says why the sub-dispatch calls are not traced; "" if
	// they are.
	NoSubDispatch string
}

// subDispatchProg is the tracer's program on scx_bpf_sub_dispatch.
const subDispatchProg = "sub_dispatch_exit"

// LoadTimeline loads the timeline tracer from its spec with the class
// addresses (ClassAddrs) and attaches it. The sub-dispatch program is
// optional: if the kernel refuses it (no such kfunc, not traceable), the
// switches are traced without it and NoSubDispatch says why.
func LoadTimeline(spec *ebpf.CollectionSpec, classes [len(TimelineClasses)]uint64) (*Timeline, error) {
	v := spec.Variables["class_addr"]
	if v == nil {
		return nil, fmt.Errorf("sched: the timeline tracer has no class_addr")
	}
	if err := v.Set(classes); err != nil {
		return nil, fmt.Errorf("sched: set the timeline tracer's class_addr: %w", err)
	}
	t := &Timeline{}
	coll, err := ebpf.NewCollection(spec)
	if err != nil && spec.Programs[subDispatchProg] != nil {
		t.NoSubDispatch = firstLine(err.Error())
		delete(spec.Programs, subDispatchProg)
		coll, err = ebpf.NewCollection(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("sched: load the timeline tracer: %w", err)
	}
	t.coll = coll
	for _, name := range []string{"switch_to", subDispatchProg} {
		prog := coll.Programs[name]
		if prog == nil {
			continue
		}
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			if name == subDispatchProg {
				t.NoSubDispatch = firstLine(err.Error())
				continue
			}
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
