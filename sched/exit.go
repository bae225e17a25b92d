package sched

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// ExitInfo is the fixture's copy of the kernel's struct scx_exit_info, taken
// in ops.exit. Kind 0 (SCX_EXIT_NONE) means the scheduler has not exited.
type ExitInfo struct {
	Kind     int64  // enum scx_exit_kind
	KindName string // e.g. "SCX_EXIT_ERROR", from the kernel's BTF; "" if unknown
	ExitCode int64
	ExitCPU  int32
	Reason   string // e.g. "runtime error"
	Msg      string // e.g. "trying to dispatch a distant sub-sched on cgroup 47"
}

// Exited reports whether ops.exit has run.
func (e ExitInfo) Exited() bool { return e.Kind != 0 }

func (e ExitInfo) String() string {
	return fmt.Sprintf("kind=%d(%s) code=%d cpu=%d reason=%q msg=%q",
		e.Kind, e.KindName, e.ExitCode, e.ExitCPU, e.Reason, e.Msg)
}

// Exit reads the exit info the fixture recorded in .data. It stays readable
// after the scheduler was disabled or detached, until Close.
func (s *Scheduler) Exit() (ExitInfo, error) {
	if s.coll == nil {
		return ExitInfo{}, fmt.Errorf("sched: %q is closed", s.name)
	}
	v := s.coll.Variables[ExitInfoVar]
	if v == nil {
		return ExitInfo{}, fmt.Errorf("sched: %q has no %s variable", s.name, ExitInfoVar)
	}
	var raw []byte
	if err := v.Get(&raw); err != nil {
		return ExitInfo{}, fmt.Errorf("sched: %q: reading %s: %w", s.name, ExitInfoVar, err)
	}
	ei, err := decodeExitInfo(v.Type(), raw)
	if err != nil {
		return ExitInfo{}, fmt.Errorf("sched: %q: %w", s.name, err)
	}
	ei.KindName = s.kinds[ei.Kind]
	return ei, nil
}

// decodeExitInfo decodes struct scxcheck_exit_info using its BTF layout.
func decodeExitInfo(v *btf.Var, raw []byte) (ExitInfo, error) {
	if v == nil {
		return ExitInfo{}, fmt.Errorf("%s has no BTF", ExitInfoVar)
	}
	st, ok := btf.UnderlyingType(v.Type).(*btf.Struct)
	if !ok {
		return ExitInfo{}, fmt.Errorf("%s is a %T, not a struct", ExitInfoVar, v.Type)
	}
	field := func(name string, size int) ([]byte, error) {
		off, sz, err := memberRange(st, name)
		if err != nil {
			return nil, err
		}
		if size > 0 && sz != size {
			return nil, fmt.Errorf("%s.%s is %d bytes, want %d", st.Name, name, sz, size)
		}
		if off+sz > len(raw) {
			return nil, fmt.Errorf("%s.%s beyond the %d bytes read", st.Name, name, len(raw))
		}
		return raw[off : off+sz], nil
	}
	var ei ExitInfo
	kind, err := field("kind", 4)
	if err != nil {
		return ei, err
	}
	cpu, err := field("exit_cpu", 4)
	if err != nil {
		return ei, err
	}
	code, err := field("exit_code", 8)
	if err != nil {
		return ei, err
	}
	reason, err := field("reason", 0)
	if err != nil {
		return ei, err
	}
	msg, err := field("msg", 0)
	if err != nil {
		return ei, err
	}
	ei.Kind = int64(int32(binary.NativeEndian.Uint32(kind)))
	ei.ExitCPU = int32(binary.NativeEndian.Uint32(cpu))
	ei.ExitCode = int64(binary.NativeEndian.Uint64(code))
	ei.Reason = cString(reason)
	ei.Msg = cString(msg)
	return ei, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Counters returns the fixture's counters: every integer variable in .bss by
// name, and every integer array element as "name[i]" (e.g. nr_dispatch,
// child_true[0]). See each fixture for what its counters mean.
func (s *Scheduler) Counters() (map[string]uint64, error) {
	if s.coll == nil {
		return nil, fmt.Errorf("sched: %q is closed", s.name)
	}
	out := make(map[string]uint64)
	for name, vs := range s.spec.Variables {
		if vs.SectionName != ".bss" {
			continue
		}
		v := s.coll.Variables[name]
		if v == nil || v.Type() == nil {
			continue
		}
		elem, n, ok := intLayout(v.Type().Type)
		if !ok {
			continue
		}
		var raw []byte
		if err := v.Get(&raw); err != nil {
			return nil, fmt.Errorf("sched: %q: reading %s: %w", s.name, name, err)
		}
		if len(raw) < elem*max(n, 1) {
			return nil, fmt.Errorf("sched: %q: %s is %d bytes, want %d", s.name, name, len(raw), elem*max(n, 1))
		}
		if n == 0 {
			out[name] = readUint(raw, elem)
			continue
		}
		for i := range n {
			out[name+"["+strconv.Itoa(i)+"]"] = readUint(raw[i*elem:], elem)
		}
	}
	return out, nil
}

// intLayout reports the element size of an integer (n == 0) or an array of
// integers (n elements).
func intLayout(t btf.Type) (elem, n int, ok bool) {
	switch t := btf.UnderlyingType(t).(type) {
	case *btf.Int:
		return int(t.Size), 0, true
	case *btf.Enum:
		return int(t.Size), 0, true
	case *btf.Array:
		e, inner, ok := intLayout(t.Type)
		if !ok || inner != 0 {
			return 0, 0, false
		}
		return e, int(t.Nelems), true
	}
	return 0, 0, false
}

func readUint(b []byte, size int) uint64 {
	switch size {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.NativeEndian.Uint16(b))
	case 4:
		return uint64(binary.NativeEndian.Uint32(b))
	default:
		return binary.NativeEndian.Uint64(b)
	}
}

// Child is one slot of a parent fixture's child table.
type Child struct {
	Slot     int
	CgroupID uint64 // the last child that used the slot
	Attached bool   // the child is attached now (not detached since)
	True     uint64 // scx_bpf_sub_dispatch(CgroupID) returned true
	False    uint64 // ... returned false
}

// Children returns the used slots of a parent fixture's child table (the
// child_cgid, child_last_cgid, child_true and child_false counters), in slot
// order.
func (s *Scheduler) Children() ([]Child, error) {
	c, err := s.Counters()
	if err != nil {
		return nil, err
	}
	if _, ok := c["child_last_cgid[0]"]; !ok {
		return nil, fmt.Errorf("sched: %q has no child table (not a parent fixture)", s.name)
	}
	var out []Child
	for i := 0; ; i++ {
		idx := "[" + strconv.Itoa(i) + "]"
		last, ok := c["child_last_cgid"+idx]
		if !ok {
			break
		}
		if last == 0 {
			continue
		}
		out = append(out, Child{
			Slot:     i,
			CgroupID: last,
			Attached: c["child_cgid"+idx] == last,
			True:     c["child_true"+idx],
			False:    c["child_false"+idx],
		})
	}
	return out, nil
}

// CounterNames returns the counter names Counters reports for a spec, sorted
// (arrays as "name[i]").
func CounterNames(spec *ebpf.CollectionSpec) []string {
	var names []string
	for name, v := range spec.Variables {
		if v.SectionName != ".bss" || v.Type == nil {
			continue
		}
		_, n, ok := intLayout(v.Type.Type)
		if !ok {
			continue
		}
		if n == 0 {
			names = append(names, name)
			continue
		}
		for i := range n {
			names = append(names, name+"["+strconv.Itoa(i)+"]")
		}
	}
	slices.SortFunc(names, strings.Compare)
	return names
}
