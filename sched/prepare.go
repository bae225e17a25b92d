package sched

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Prepare returns a copy of spec with opts applied; spec itself is not
// modified. It
//   - writes name, timeout_ms, flags and sub_cgroup_id into the struct_ops
//     map's Contents[0].Value at the member offsets of its BTF struct;
//   - copies the effective ops name into the instance_name rodata array;
//   - sets the rodata knobs in opts.Knobs;
//   - if kernel is not nil, fills every "__SCX_*" rodata variable from the
//     kernel enum of the same name without the leading "__" (see
//     FillKernelEnums); with a nil kernel they keep the values compiled in
//     from vmlinux.h.
func Prepare(spec *ebpf.CollectionSpec, kernel *btf.Spec, opts Options) (*ebpf.CollectionSpec, error) {
	if spec == nil {
		return nil, fmt.Errorf("sched: nil CollectionSpec")
	}
	spec = spec.Copy()

	opsName, _, err := structOpsMap(spec)
	if err != nil {
		return nil, err
	}
	ms := spec.Maps[opsName]
	st := ms.Value.(*btf.Struct)
	if len(ms.Contents) != 1 {
		return nil, fmt.Errorf("sched: struct_ops map %s has %d values, want 1", opsName, len(ms.Contents))
	}
	value, ok := ms.Contents[0].Value.([]byte)
	if !ok {
		return nil, fmt.Errorf("sched: struct_ops map %s value is %T, want []byte", opsName, ms.Contents[0].Value)
	}
	// MapSpec.Copy does not copy the bytes; never write into the caller's.
	value = bytes.Clone(value)
	ms.Contents[0].Value = value

	name := opts.Name
	if name == "" {
		name = opsNameOf(spec, opsName)
	} else if err := checkOpsName(name); err != nil {
		return nil, err
	}

	nameBuf := make([]byte, len(name)+1)
	copy(nameBuf, name)
	if err := writeMember(st, value, "name", nameBuf, true); err != nil {
		return nil, fmt.Errorf("sched: %s: %w", opsName, err)
	}
	for _, m := range []struct {
		member string
		val    uint64
		size   int
	}{
		{"timeout_ms", uint64(opts.TimeoutMs), 4},
		{"flags", opts.Flags, 8},
		{"sub_cgroup_id", opts.SubCgroupID, 8},
	} {
		buf := make([]byte, m.size)
		if m.size == 4 {
			binary.NativeEndian.PutUint32(buf, uint32(m.val))
		} else {
			binary.NativeEndian.PutUint64(buf, m.val)
		}
		if err := writeMember(st, value, m.member, buf, false); err != nil {
			return nil, fmt.Errorf("sched: %s: %w", opsName, err)
		}
	}

	if v := spec.Variables[InstanceNameVar]; v != nil {
		if err := setString(v, name); err != nil {
			return nil, fmt.Errorf("sched: %w", err)
		}
	}

	knobNames := make([]string, 0, len(opts.Knobs))
	for k := range opts.Knobs {
		knobNames = append(knobNames, k)
	}
	slices.Sort(knobNames)
	for _, k := range knobNames {
		if err := setKnob(spec, k, opts.Knobs[k]); err != nil {
			return nil, fmt.Errorf("sched: %q: %w", name, err)
		}
	}

	memberNames := make([]string, 0, len(opts.Members))
	for k := range opts.Members {
		memberNames = append(memberNames, k)
	}
	slices.Sort(memberNames)
	for _, m := range memberNames {
		if err := writeScalarMember(st, value, m, opts.Members[m]); err != nil {
			return nil, fmt.Errorf("sched: %q: ops.%s: %w", name, m, err)
		}
	}

	if kernel != nil {
		if err := FillKernelEnums(spec, kernel); err != nil {
			return nil, fmt.Errorf("sched: %q: %w", name, err)
		}
		if err := dropMissingMembers(spec, kernel, st, value, opts.Members); err != nil {
			return nil, fmt.Errorf("sched: %q: %w", name, err)
		}
	}
	return spec, nil
}

// writeScalarMember writes an integer struct_ops member by name, in the
// member's own size.
func writeScalarMember(st *btf.Struct, value []byte, member string, val uint64) error {
	_, size, err := memberRange(st, member)
	if err != nil {
		return err
	}
	buf := make([]byte, size)
	switch size {
	case 1:
		buf[0] = byte(val)
	case 2:
		binary.NativeEndian.PutUint16(buf, uint16(val))
	case 4:
		binary.NativeEndian.PutUint32(buf, uint32(val))
	case 8:
		binary.NativeEndian.PutUint64(buf, val)
	default:
		return fmt.Errorf("is %d bytes, not an integer member", size)
	}
	if size < 8 && val>>(uint(size)*8) != 0 {
		return fmt.Errorf("is %d bytes, cannot hold %d", size, val)
	}
	return writeMember(st, value, member, buf, false)
}

// MissingMemberError says that a struct_ops member the options set is not
// in the running kernel's ops type: the kernel is of an API generation
// without it.
type MissingMemberError struct {
	Type, Member string
}

func (e *MissingMemberError) Error() string {
	return fmt.Sprintf("the kernel's struct %s has no member %s", e.Type, e.Member)
}

// dropMissingMembers fits a fixture compiled against a newer kernel's ops
// type to the running kernel's: the programs of callbacks the kernel's
// struct lacks are removed from spec (cilium/ebpf would otherwise fail to
// load them), and the value bytes of such members must be zero, as they are
// for callbacks. A scalar member set through Options.Members that the
// kernel lacks is a *MissingMemberError.
func dropMissingMembers(spec *ebpf.CollectionSpec, kernel *btf.Spec, st *btf.Struct, value []byte, set map[string]uint64) error {
	var kst *btf.Struct
	if err := kernel.TypeByName(st.Name, &kst); err != nil {
		return nil // cilium/ebpf reports a missing ops type at load, with its own words
	}
	have := make(map[string]bool, len(kst.Members))
	for _, m := range kst.Members {
		have[m.Name] = true
	}
	for _, m := range st.Members {
		if have[m.Name] {
			continue
		}
		if v, ok := set[m.Name]; ok && v != 0 {
			return &MissingMemberError{Type: st.Name, Member: m.Name}
		}
		for name, ps := range spec.Programs {
			if ps.AttachTo == st.Name+":"+m.Name {
				delete(spec.Programs, name)
			}
		}
	}
	return nil
}

// DroppedCallbacks lists the ops members of spec's struct_ops type that
// the kernel lacks, for which Prepare removed the programs.
func DroppedCallbacks(spec *ebpf.CollectionSpec, kernel *btf.Spec) []string {
	_, typ, err := structOpsMap(spec)
	if err != nil {
		return nil
	}
	var kst *btf.Struct
	if kernel.TypeByName(typ, &kst) != nil {
		return nil
	}
	have := make(map[string]bool, len(kst.Members))
	for _, m := range kst.Members {
		have[m.Name] = true
	}
	var out []string
	for _, ps := range spec.Programs {
		member, ok := strings.CutPrefix(ps.AttachTo, typ+":")
		if ok && !have[member] {
			out = append(out, member)
		}
	}
	slices.Sort(out)
	return out
}

// structOpsMap finds the one struct_ops map of a fixture and its type name.
func structOpsMap(spec *ebpf.CollectionSpec) (name, typ string, err error) {
	var names []string
	for n, m := range spec.Maps {
		if m.Type == ebpf.StructOpsMap {
			names = append(names, n)
		}
	}
	if len(names) != 1 {
		slices.Sort(names)
		return "", "", fmt.Errorf("sched: want exactly one struct_ops map, found %d %v", len(names), names)
	}
	st, ok := spec.Maps[names[0]].Value.(*btf.Struct)
	if !ok {
		return "", "", fmt.Errorf("sched: struct_ops map %s: value type %T is not a struct", names[0], spec.Maps[names[0]].Value)
	}
	return names[0], st.Name, nil
}

// opsNameOf reads ops.name from the struct_ops value bytes.
func opsNameOf(spec *ebpf.CollectionSpec, opsName string) string {
	ms := spec.Maps[opsName]
	st, _ := ms.Value.(*btf.Struct)
	if st == nil || len(ms.Contents) == 0 {
		return opsName
	}
	value, _ := ms.Contents[0].Value.([]byte)
	off, size, err := memberRange(st, "name")
	if err != nil || off+size > len(value) {
		return opsName
	}
	b := value[off : off+size]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// checkOpsName applies the kernel's rules for ops.name.
func checkOpsName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("sched: ops name %q is %d bytes, the kernel takes at most %d", name, len(name), MaxNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("sched: ops name %q: the kernel accepts only [A-Za-z0-9_.], not %q", name, c)
		}
	}
	return nil
}

// memberRange returns the byte offset and size of a struct member.
func memberRange(st *btf.Struct, member string) (off, size int, err error) {
	for _, m := range st.Members {
		if m.Name != member {
			continue
		}
		if m.BitfieldSize != 0 || m.Offset%8 != 0 {
			return 0, 0, fmt.Errorf("member %s of %s is a bitfield", member, st.Name)
		}
		sz, err := btf.Sizeof(m.Type)
		if err != nil {
			return 0, 0, fmt.Errorf("member %s of %s: %w", member, st.Name, err)
		}
		return int(m.Offset.Bytes()), sz, nil
	}
	return 0, 0, fmt.Errorf("struct %s has no member %s", st.Name, member)
}

// writeMember writes data into member of st inside value. With prefix set,
// data may be shorter than the member, which is zero-filled first.
func writeMember(st *btf.Struct, value []byte, member string, data []byte, prefix bool) error {
	off, size, err := memberRange(st, member)
	if err != nil {
		if allZero(data) {
			return nil // a zero value for a member these headers lack
		}
		return err
	}
	if off+size > len(value) {
		return fmt.Errorf("member %s (offset %d, size %d) beyond the %d-byte value", member, off, size, len(value))
	}
	if len(data) > size || !prefix && len(data) != size {
		return fmt.Errorf("member %s is %d bytes, cannot hold %d", member, size, len(data))
	}
	clear(value[off : off+size])
	copy(value[off:], data)
	return nil
}

// setString writes a NUL-terminated string into a char array variable,
// truncating it to fit.
func setString(v *ebpf.VariableSpec, s string) error {
	size := int(v.Size())
	if size == 0 {
		return fmt.Errorf("variable %s has no size", v.Name)
	}
	buf := make([]byte, size)
	copy(buf[:size-1], s)
	return v.Set(buf)
}

// reservedVar reports variables the loader fills itself.
func reservedVar(name string) bool {
	return name == InstanceNameVar || strings.HasPrefix(name, EnumVarPrefix)
}

// Knobs lists the rodata knobs of a spec: constant integer variables the
// loader does not fill itself, sorted.
func Knobs(spec *ebpf.CollectionSpec) []string {
	var names []string
	for n, v := range spec.Variables {
		if !v.Constant() || reservedVar(n) {
			continue
		}
		if _, _, err := intType(v); err == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// intType returns the size and signedness of an integer (or enum/bool)
// variable.
func intType(v *ebpf.VariableSpec) (size int, signed bool, err error) {
	if v.Type == nil {
		return 0, false, fmt.Errorf("variable %s has no BTF", v.Name)
	}
	switch t := btf.UnderlyingType(v.Type.Type).(type) {
	case *btf.Int:
		return int(t.Size), t.Encoding == btf.Signed, nil
	case *btf.Enum:
		return int(t.Size), t.Signed, nil
	default:
		return 0, false, fmt.Errorf("variable %s is a %T, not an integer", v.Name, t)
	}
}

// fits reports whether val can be stored in an integer of size bytes;
// negative values of signed variables are accepted in two's complement.
func fits(val uint64, size int, signed bool) bool {
	if size >= 8 {
		return true
	}
	bits := uint(size * 8)
	if val>>bits == 0 {
		return true
	}
	return signed && int64(val)>>(bits-1) == -1
}

// putInt stores val into a size-byte variable.
func putInt(v *ebpf.VariableSpec, size int, val uint64) error {
	switch size {
	case 1:
		return v.Set(uint8(val))
	case 2:
		return v.Set(uint16(val))
	case 4:
		return v.Set(uint32(val))
	case 8:
		return v.Set(val)
	}
	return fmt.Errorf("variable %s: unsupported size %d", v.Name, size)
}

func setKnob(spec *ebpf.CollectionSpec, name string, val uint64) error {
	v := spec.Variables[name]
	if v == nil {
		return fmt.Errorf("unknown knob %q (knobs: %s)", name, strings.Join(Knobs(spec), ", "))
	}
	if reservedVar(name) {
		return fmt.Errorf("%s is filled by the loader, not a knob", name)
	}
	if !v.Constant() {
		return fmt.Errorf("%s is in %s, not a rodata knob", name, v.SectionName)
	}
	size, signed, err := intType(v)
	if err != nil {
		return fmt.Errorf("knob %w", err)
	}
	if t, ok := btf.UnderlyingType(v.Type.Type).(*btf.Int); ok && t.Encoding == btf.Bool && val > 1 {
		return fmt.Errorf("knob %s is a bool, got %d", name, val)
	}
	if !fits(val, size, signed) {
		return fmt.Errorf("knob %s (%d bytes) cannot hold %d", name, size, val)
	}
	if err := putInt(v, size, val); err != nil {
		return fmt.Errorf("knob %s: %w", name, err)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
