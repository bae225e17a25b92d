package sched

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/scxcheck/scxcheck/fixtures"
)

func spec(t *testing.T, name string) *ebpf.CollectionSpec {
	t.Helper()
	s, err := fixtures.Spec(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func opsValue(t *testing.T, s *ebpf.CollectionSpec) (*btf.Struct, []byte) {
	t.Helper()
	name, _, err := structOpsMap(s)
	if err != nil {
		t.Fatal(err)
	}
	ms := s.Maps[name]
	return ms.Value.(*btf.Struct), ms.Contents[0].Value.([]byte)
}

func member(t *testing.T, st *btf.Struct, value []byte, name string) []byte {
	t.Helper()
	off, size, err := memberRange(st, name)
	if err != nil {
		t.Fatal(err)
	}
	return value[off : off+size]
}

func getVar(t *testing.T, s *ebpf.CollectionSpec, name string) []byte {
	t.Helper()
	v := s.Variables[name]
	if v == nil {
		t.Fatalf("variable %s missing", name)
	}
	return v.Value
}

func TestPrepareOpsValue(t *testing.T) {
	for _, fx := range fixtures.Names() {
		t.Run(fx, func(t *testing.T) {
			orig := spec(t, fx)
			_, origValue := opsValue(t, orig)
			before := bytes.Clone(origValue)

			opts := Options{Name: "mid.level_2", TimeoutMs: 5000, Flags: 0x8, SubCgroupID: 47}
			p, err := Prepare(orig, nil, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(origValue, before) {
				t.Fatal("Prepare modified the caller's struct_ops bytes")
			}

			st, value := opsValue(t, p)
			if len(value) != int(st.Size) {
				t.Fatalf("value is %d bytes, struct %s is %d", len(value), st.Name, st.Size)
			}
			name := member(t, st, value, "name")
			if len(name) != 128 || cString(name) != opts.Name || !allZero(name[len(opts.Name):]) {
				t.Errorf("name bytes %q", name)
			}
			if got := binary.NativeEndian.Uint32(member(t, st, value, "timeout_ms")); got != 5000 {
				t.Errorf("timeout_ms = %d", got)
			}
			if got := binary.NativeEndian.Uint64(member(t, st, value, "flags")); got != 0x8 {
				t.Errorf("flags = %#x", got)
			}
			if got := binary.NativeEndian.Uint64(member(t, st, value, "sub_cgroup_id")); got != 47 {
				t.Errorf("sub_cgroup_id = %d", got)
			}
			if got := binary.NativeEndian.Uint32(member(t, st, value, "exit_dump_len")); got != 16384 {
				t.Errorf("exit_dump_len = %d, want the fixture's 16384", got)
			}

			// Independent check against the 7.2 layout: 35 callbacks, then
			// dispatch_max_batch, flags, timeout_ms, exit_dump_len,
			// hotplug_seq, sub_cgroup_id, name[128], priv.
			if st.Name == "sched_ext_ops_cid" && st.Size == 456 {
				if binary.NativeEndian.Uint64(value[312:]) != 47 || binary.NativeEndian.Uint32(value[296:]) != 5000 ||
					binary.NativeEndian.Uint64(value[288:]) != 0x8 || cString(value[320:448]) != opts.Name {
					t.Errorf("fixed 7.2 offsets do not hold the options: % x", value[280:340])
				}
			} else {
				t.Logf("struct %s (%d bytes): the fixed-offset check covers the 7.2 cid-form layout only", st.Name, st.Size)
			}

			// Only the four members changed.
			changed := make([]bool, len(value))
			for _, m := range []string{"name", "timeout_ms", "flags", "sub_cgroup_id"} {
				off, size, _ := memberRange(st, m)
				for i := off; i < off+size; i++ {
					changed[i] = true
				}
			}
			for i := range value {
				if !changed[i] && value[i] != before[i] {
					t.Fatalf("byte %d outside the option members changed", i)
				}
			}

			inst := getVar(t, p, InstanceNameVar)
			if cString(inst) != opts.Name {
				t.Errorf("instance_name = %q", cString(inst))
			}
		})
	}
}

func TestPrepareDefaultName(t *testing.T) {
	for _, fx := range fixtures.Names() {
		p, err := Prepare(spec(t, fx), nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		st, value := opsValue(t, p)
		if got := cString(member(t, st, value, "name")); got != fx {
			t.Errorf("%s: default ops name %q", fx, got)
		}
		if got := cString(getVar(t, p, InstanceNameVar)); got != fx {
			t.Errorf("%s: default instance_name %q", fx, got)
		}
		if got := binary.NativeEndian.Uint64(member(t, st, value, "sub_cgroup_id")); got != 0 {
			t.Errorf("%s: sub_cgroup_id %d, want 0 (root)", fx, got)
		}
	}
}

func TestPrepareLongNameTruncatesInstance(t *testing.T) {
	long := strings.Repeat("a", MaxNameLen)
	p, err := Prepare(spec(t, "child"), nil, Options{Name: long})
	if err != nil {
		t.Fatal(err)
	}
	st, value := opsValue(t, p)
	if got := cString(member(t, st, value, "name")); got != long {
		t.Errorf("ops name has %d bytes, want %d", len(got), len(long))
	}
	inst := getVar(t, p, InstanceNameVar)
	if got := cString(inst); got != long[:len(inst)-1] {
		t.Errorf("instance_name %q, want the name truncated to %d bytes", got, len(inst)-1)
	}
}

func TestPrepareKnobs(t *testing.T) {
	p, err := Prepare(spec(t, "parent"), nil, Options{Knobs: map[string]uint64{
		"capacity":            3,
		"extra_dispatch_cgid": 1 << 40,
		"no_sub_dispatch":     1,
		"small_stack":         1,
		"trace_first":         0,
		"trace_changes":       7,
	}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, want uint64) {
		t.Helper()
		b := getVar(t, p, name)
		var got uint64
		switch len(b) {
		case 1:
			got = uint64(b[0])
		case 4:
			got = uint64(binary.NativeEndian.Uint32(b))
		case 8:
			got = binary.NativeEndian.Uint64(b)
		default:
			t.Fatalf("%s: %d bytes", name, len(b))
		}
		if got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	check("capacity", 3)
	check("extra_dispatch_cgid", 1<<40)
	check("no_sub_dispatch", 1)
	check("small_stack", 1)
	check("trace_first", 0)
	check("trace_changes", 7)

	// Untouched knobs keep their compiled-in defaults.
	d, err := Prepare(spec(t, "parent"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p = d
	check("capacity", 8)
	check("trace_first", 4)
	check("trace_changes", 32)
	check("extra_dispatch_cgid", 0)
	check("no_sub_dispatch", 0)
}

func TestKnobsList(t *testing.T) {
	want := map[string][]string{
		"parent":     {"capacity", "error_after", "exit_after", "extra_dispatch_cgid", "grant_caps", "no_sub_dispatch", "own_if_empty", "small_stack", "trace_changes", "trace_first"},
		"child":      {"enqueue_local", "error_after", "exit_after", "no_dispatch", "requeue", "rescue", "small_stack", "trace_first"},
		"cpuform":    {"small_stack", "trace_first"},
		"noarena":    {"small_stack", "trace_first"},
		"badenqueue": {"small_stack", "target_cgid", "trace_first"},
	}
	for _, fx := range fixtures.Names() {
		if got := Knobs(spec(t, fx)); !slices.Equal(got, want[fx]) {
			t.Errorf("%s: Knobs = %v, want %v", fx, got, want[fx])
		}
	}
}

func TestPrepareErrors(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{Knobs: map[string]uint64{"nope": 1}}, "unknown knob"},
		{Options{Knobs: map[string]uint64{"no_sub_dispatch": 2}}, "bool"},
		{Options{Knobs: map[string]uint64{"capacity": 1 << 32}}, "cannot hold"},
		{Options{Knobs: map[string]uint64{"nr_dispatch": 1}}, "not a rodata knob"},
		{Options{Knobs: map[string]uint64{"__SCX_SLICE_DFL": 1}}, "filled by the loader"},
		{Options{Knobs: map[string]uint64{"instance_name": 1}}, "filled by the loader"},
		{Options{Name: "scx-parent"}, "only [A-Za-z0-9_.]"},
		{Options{Name: strings.Repeat("x", MaxNameLen+1)}, "at most 127"},
	} {
		_, err := Prepare(spec(t, "parent"), nil, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Prepare(%+v) error %v, want one containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestFits(t *testing.T) {
	for _, tc := range []struct {
		v      uint64
		size   int
		signed bool
		ok     bool
	}{
		{255, 1, false, true},
		{256, 1, false, false},
		{0xffffffff, 4, false, true},
		{1 << 32, 4, false, false},
		{^uint64(0), 4, true, true},                  // -1
		{uint64(0xffffffff7fffffff), 4, true, false}, // below INT32_MIN
		{^uint64(0), 8, false, true},
	} {
		if got := fits(tc.v, tc.size, tc.signed); got != tc.ok {
			t.Errorf("fits(%#x, %d, %v) = %v", tc.v, tc.size, tc.signed, got)
		}
	}
}

// fakeKernel builds a BTF spec holding the enums the loader reads.
func fakeKernel(t *testing.T, consts []btf.EnumValue) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder([]btf.Type{
		&btf.Enum{Name: "scx_fake_consts", Size: 8, Values: consts},
		&btf.Enum{Name: "scx_exit_kind", Size: 4, Values: []btf.EnumValue{
			{Name: "SCX_EXIT_NONE", Value: 0}, {Name: "SCX_EXIT_ERROR", Value: 1024},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Spec()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFillKernelEnumsFake(t *testing.T) {
	k := fakeKernel(t, []btf.EnumValue{
		{Name: "SCX_SLICE_DFL", Value: 12345},
		{Name: "SCX_DSQ_GLOBAL", Value: 1<<63 | 77},
		{Name: "SCX_DSQ_LOCAL", Value: 1<<63 | 78},
		{Name: "SCX_TASK_QUEUED", Value: 1},
	})
	for _, fx := range fixtures.Names() {
		p, err := Prepare(spec(t, fx), k, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]uint64{
			"__SCX_SLICE_DFL": 12345, "__SCX_DSQ_GLOBAL": 1<<63 | 77, "__SCX_DSQ_LOCAL": 1<<63 | 78,
		} {
			if got := binary.NativeEndian.Uint64(getVar(t, p, name)); got != want {
				t.Errorf("%s: %s = %#x, want %#x", fx, name, got, want)
			}
		}
	}

	kinds, err := ExitKindNames(k)
	if err != nil || kinds[1024] != "SCX_EXIT_ERROR" {
		t.Errorf("ExitKindNames = %v, %v", kinds, err)
	}

	missing := fakeKernel(t, []btf.EnumValue{{Name: "SCX_SLICE_DFL", Value: 1}})
	if _, err := Prepare(spec(t, "parent"), missing, Options{}); err == nil || !strings.Contains(err.Error(), "SCX_DSQ_GLOBAL") {
		t.Errorf("missing enumerators: error %v", err)
	}
}

// dispatchShell returns the instructions of a dispatch program up to its
// first subprogram.
func dispatchShell(t *testing.T, s *ebpf.CollectionSpec) (string, asm.Instructions) {
	t.Helper()
	for name, p := range s.Programs {
		if !strings.HasSuffix(p.AttachTo, ":dispatch") {
			continue
		}
		var out asm.Instructions
		for i, ins := range p.Instructions {
			if i > 0 && ins.Symbol() != "" {
				break
			}
			out = append(out, ins)
		}
		return name, out
	}
	return "", nil
}

// TestDispatchStackPad checks the layout the private-stack knob relies on:
// the dispatch program's own frame holds the 96-byte pad and nothing else.
func TestDispatchStackPad(t *testing.T) {
	for _, fx := range fixtures.Names() {
		s := spec(t, fx)
		name, insns := dispatchShell(t, s)
		if name == "" {
			continue // cpuform has no dispatch
		}
		var stores int
		minOff := int16(0)
		for _, ins := range insns {
			if ins.OpCode.Class().IsStore() && ins.Dst == asm.R10 || ins.OpCode.Class().IsLoad() && ins.Src == asm.R10 {
				stores++
				minOff = min(minOff, ins.Offset)
			}
			if ins.OpCode.Class() == asm.ALU64Class && ins.Src == asm.R10 {
				t.Errorf("%s: %s takes the frame's address: %v", fx, name, ins)
			}
		}
		if stores != 12 || minOff > -64 {
			t.Errorf("%s: %s: %d stack accesses down to %d, want only the 12 pad stores reaching at least -64:\n%v",
				fx, name, stores, minOff, insns)
		}
	}
}

func TestCounterNames(t *testing.T) {
	names := CounterNames(spec(t, "parent"))
	for _, want := range []string{"nr_dispatch", "nr_moved", "nr_sub_true", "nr_sub_false", "nr_extra_true",
		"nr_sub_attach", "nr_sub_reject", "child_cgid[0]", "child_true[7]", "child_false[7]", "child_last_cgid[3]"} {
		if !slices.Contains(names, want) {
			t.Errorf("counter %s missing from %v", want, names)
		}
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trace_state") || n == "exit_info" {
			t.Errorf("%s should not be a counter", n)
		}
	}
	child := CounterNames(spec(t, "child"))
	for _, want := range []string{"nr_dispatch", "nr_enqueue", "nr_moved", "nr_prev", "prev_tgid[7]", "nr_requeue",
		"nr_caps_updated", "nr_ecaps_updated", "ecaps[15]", "ecaps_cpu_ok", "caps_updated_caps", "caps_updated_cmask"} {
		if !slices.Contains(child, want) {
			t.Errorf("child counter %s missing from %v", want, child)
		}
	}
}

func TestDecodeExitInfo(t *testing.T) {
	v := spec(t, "parent").Variables[ExitInfoVar]
	if v == nil || v.Type == nil {
		t.Fatal("exit_info without BTF")
	}
	raw := make([]byte, v.Size())
	if len(raw) != 4+4+8+128+1024 {
		t.Fatalf("exit_info is %d bytes", len(raw))
	}
	binary.NativeEndian.PutUint32(raw[0:], 1024)
	binary.NativeEndian.PutUint32(raw[4:], ^uint32(0)) // -1
	binary.NativeEndian.PutUint64(raw[8:], 2<<32)
	copy(raw[16:], "runtime error")
	copy(raw[144:], "trying to dispatch a distant sub-sched on cgroup 47")
	ei, err := decodeExitInfo(v.Type, raw)
	if err != nil {
		t.Fatal(err)
	}
	want := ExitInfo{Kind: 1024, ExitCPU: -1, ExitCode: 2 << 32, Reason: "runtime error",
		Msg: "trying to dispatch a distant sub-sched on cgroup 47"}
	if ei != want || !ei.Exited() {
		t.Errorf("decoded %+v, want %+v", ei, want)
	}
}

func TestLoadErrorFormat(t *testing.T) {
	ve := &ebpf.VerifierError{Cause: errors.New("permission denied"), Log: []string{"0: R1=ctx()", "calling kernel function scx_bpf_sub_dispatch is not allowed"}}
	err := error(&LoadError{Name: "bad", Err: errors.Join(errors.New("program badenqueue_enqueue"), ve)})
	var got *ebpf.VerifierError
	if !errors.As(err, &got) {
		t.Fatal("errors.As cannot find the VerifierError")
	}
	full := strings.Join(strings.Fields(strings.ReplaceAll(fmtPlusV(err), "\n", " ")), " ")
	if !strings.Contains(full, "0: R1=ctx()") || !strings.Contains(full, "is not allowed") {
		t.Errorf("%%+v does not print the whole log: %s", full)
	}
}

// --- tests against the real kernel BTF --------------------------------------

func kernelBTF(t *testing.T) *btf.Spec {
	t.Helper()
	path := os.Getenv("SCXCHECK_TEST_VMLINUX")
	if path == "" {
		t.Skip("SCXCHECK_TEST_VMLINUX not set (path of the kernel-under-test's ELF vmlinux)")
	}
	k, err := LoadVmlinuxBTF(path)
	if err != nil {
		t.Fatalf("SCXCHECK_TEST_VMLINUX=%s: %v", path, err)
	}
	return k
}

func TestKernelEnums(t *testing.T) {
	k := kernelBTF(t)
	for _, fx := range fixtures.Names() {
		p, err := Prepare(spec(t, fx), k, Options{Name: fx})
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]uint64{
			"__SCX_SLICE_DFL":  20_000_000,
			"__SCX_DSQ_GLOBAL": 1<<63 | 1,
			"__SCX_DSQ_LOCAL":  1<<63 | 2,
		} {
			if got := binary.NativeEndian.Uint64(getVar(t, p, name)); got != want {
				t.Errorf("%s: %s = %#x, want %#x", fx, name, got, want)
			}
		}
	}

	kinds, err := ExitKindNames(k)
	if err != nil {
		t.Fatal(err)
	}
	for v, n := range map[int64]string{0: "SCX_EXIT_NONE", 64: "SCX_EXIT_UNREG", 68: "SCX_EXIT_PARENT",
		1024: "SCX_EXIT_ERROR", 1025: "SCX_EXIT_ERROR_BPF", 1026: "SCX_EXIT_ERROR_STALL"} {
		if kinds[v] != n {
			t.Errorf("exit kind %d = %q, want %s", v, kinds[v], n)
		}
	}
}

// TestKernelTypes checks what cilium/ebpf will check at load time: every
// kfunc a fixture declares exists in the kernel with a compatible prototype,
// and the fixture's struct_ops type matches the kernel's member layout.
func TestKernelTypes(t *testing.T) {
	k := kernelBTF(t)
	for _, fx := range fixtures.Names() {
		s := spec(t, fx)
		for typ, err := range s.Types.All() {
			if err != nil {
				t.Fatal(err)
			}
			fn, ok := typ.(*btf.Func)
			if !ok || fn.Linkage != btf.ExternFunc {
				continue
			}
			var kfn *btf.Func
			if err := k.TypeByName(fn.Name, &kfn); err != nil {
				t.Errorf("%s: kfunc %s: %v", fx, fn.Name, err)
				continue
			}
			if err := btf.CheckTypeCompatibility(fn.Type, kfn.Type); err != nil {
				t.Errorf("%s: kfunc %s incompatible with the kernel's: %v", fx, fn.Name, err)
			}
		}

		st, _ := opsValue(t, s)
		var kst *btf.Struct
		if err := k.TypeByName(st.Name, &kst); err != nil {
			t.Fatalf("%s: kernel struct %s: %v", fx, st.Name, err)
		}
		var wrapper *btf.Struct
		if err := k.TypeByName("bpf_struct_ops_"+st.Name, &wrapper); err != nil {
			t.Errorf("%s: kernel lacks the struct_ops value type bpf_struct_ops_%s: %v", fx, st.Name, err)
		}
		for _, m := range st.Members {
			i := slices.IndexFunc(kst.Members, func(km btf.Member) bool { return km.Name == m.Name })
			if i < 0 {
				t.Errorf("%s: kernel %s lacks member %s", fx, st.Name, m.Name)
				continue
			}
			if kst.Members[i].Offset != m.Offset {
				t.Errorf("%s: %s.%s at bit %d, kernel has %d", fx, st.Name, m.Name, m.Offset, kst.Members[i].Offset)
			}
		}
	}
}

func fmtPlusV(err error) string { return fmt.Sprintf("%+v", err) }
