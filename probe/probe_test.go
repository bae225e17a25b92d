package probe

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/scxcheck/scxcheck/proto"
)

// kernelSpec builds a tiny kernel BTF with the given sched_ext_ops_cid
// members, optionally the kfunc and the exit-kind enum.
func kernelSpec(t *testing.T, members []string, kfunc, kinds bool) *btf.Spec {
	t.Helper()
	u64 := &btf.Int{Name: "u64", Size: 8}
	var types []btf.Type
	if members != nil {
		st := &btf.Struct{Name: "sched_ext_ops_cid", Size: uint32(8 * len(members))}
		for i, m := range members {
			st.Members = append(st.Members, btf.Member{Name: m, Type: u64, Offset: btf.Bits(64 * i)})
		}
		types = append(types, st)
	}
	if kfunc {
		proto := &btf.FuncProto{Return: &btf.Int{Name: "bool", Size: 1, Encoding: btf.Bool}, Params: []btf.FuncParam{{Name: "cgroup_id", Type: u64}}}
		types = append(types, &btf.Func{Name: "scx_bpf_sub_dispatch", Type: proto, Linkage: btf.GlobalFunc})
	}
	if kinds {
		types = append(types, &btf.Enum{Name: "scx_exit_kind", Size: 4, Values: []btf.EnumValue{
			{Name: "SCX_EXIT_NONE", Value: 0}, {Name: "SCX_EXIT_PARENT", Value: 68}, {Name: "SCX_EXIT_ERROR", Value: 1024},
		}})
	}
	return marshalSpec(t, types)
}

func TestKernel72(t *testing.T) {
	caps := Kernel(kernelSpec(t, []string{"dispatch", "sub_attach", "sub_detach", "sub_cgroup_id"}, true, true))
	if err := Require(caps, SubSchedItems...); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(caps.Missing)), slices.Sorted(slices.Values(CapsItems))) {
		t.Errorf("missing %v, want exactly the capability generation's items", caps.Missing)
	}
	if caps.ExitKinds["SCX_EXIT_ERROR"] != 1024 || ExitKindName(caps, 68) != "SCX_EXIT_PARENT" {
		t.Errorf("exit kinds %v", caps.ExitKinds)
	}
	if g := GenerationOf(caps); g != "7.2" {
		t.Errorf("GenerationOf = %q, want 7.2", g)
	}
	if err := Require(caps, KfuncSubGrant); err == nil || err.Error() != "kernel lacks kfunc scx_bpf_sub_grant" {
		t.Errorf("Require(grant) = %v", err)
	}
	if err := RequireGeneration(caps, "7.2"); err != nil {
		t.Errorf("RequireGeneration(7.2) = %v", err)
	}
	err := RequireGeneration(caps, "7.3")
	if err == nil || !strings.HasPrefix(err.Error(), "kernel lacks sub-scheduler API 7.3 (per-CPU capabilities a parent grants its children): ") ||
		!strings.Contains(err.Error(), "kfunc scx_bpf_sub_grant") {
		t.Errorf("RequireGeneration(7.3) = %v", err)
	}
}

// spec73 is a kernel of the capability generation, plus extra items.
func spec73(t *testing.T, extraMembers, extraKfuncs []string) *btf.Spec {
	t.Helper()
	members := append([]string{"dispatch", "sub_attach", "sub_detach", "sub_caps_updated", "sub_ecaps_updated",
		"rescue_bandwidth_ppt", "rescue_quantum_us", "sub_cgroup_id"}, extraMembers...)
	kfuncs := append([]string{"scx_bpf_sub_dispatch", "scx_bpf_sub_dispatch_impl", "scx_bpf_sub_grant", "scx_bpf_sub_revoke",
		"scx_bpf_sub_caps", "scx_bpf_sub_kill_bstr", "scx_bpf_online_cmask"}, extraKfuncs...)
	return buildSpec(t, members, kfuncs, map[string]uint64{"SCX_EXIT_PARENT": 68, "SCX_EXIT_PARENT_KILL": 69,
		"SCX_EXIT_ERROR": 1024, "SCX_EXIT_ERROR_REENQ": 1027, "SCX_EXIT_ERROR_RESCUE": 1028})
}

func TestKernel73(t *testing.T) {
	caps := Kernel(spec73(t, nil, nil))
	if len(caps.Missing) != 0 || len(caps.Unknown) != 0 {
		t.Fatalf("missing %v, unknown %v", caps.Missing, caps.Unknown)
	}
	if g := GenerationOf(caps); g != "7.3" {
		t.Errorf("GenerationOf = %q, want 7.3", g)
	}
	if d := Describe(caps); d != "7.3 (per-CPU capabilities a parent grants its children)" {
		t.Errorf("Describe = %q", d)
	}
}

// A kernel newer than scxcheck: the newest known generation, and the
// sub-scheduler items it does not know named (not *_impl twins).
func TestKernelNewer(t *testing.T) {
	caps := Kernel(spec73(t, []string{"sub_frobnicate", "rescue_limit", "tick"}, []string{"scx_bpf_sub_frob", "scx_bpf_sub_frob_impl"}))
	if g := GenerationOf(caps); g != "7.3" {
		t.Errorf("GenerationOf = %q, want 7.3", g)
	}
	want := []string{"kfunc scx_bpf_sub_frob", "sched_ext_ops_cid.rescue_limit", "sched_ext_ops_cid.sub_frobnicate"}
	if !slices.Equal(caps.Unknown, want) {
		t.Errorf("Unknown = %v, want %v", caps.Unknown, want)
	}
	if d := Describe(caps); !strings.Contains(d, "newer items scxcheck does not know: kfunc scx_bpf_sub_frob") {
		t.Errorf("Describe = %q", d)
	}
}

// Half a generation is not that generation.
func TestKernelPartialGeneration(t *testing.T) {
	spec := buildSpec(t, []string{"dispatch", "sub_attach", "sub_detach", "sub_cgroup_id"},
		[]string{"scx_bpf_sub_dispatch", "scx_bpf_sub_grant"}, map[string]uint64{"SCX_EXIT_ERROR": 1024})
	if g := GenerationOf(Kernel(spec)); g != "7.2" {
		t.Errorf("GenerationOf = %q, want 7.2", g)
	}
	if g := GenerationOf(Kernel(kernelSpec(t, nil, false, true))); g != "" {
		t.Errorf("GenerationOf(no sub-scheds) = %q, want none", g)
	}
}

// buildSpec builds kernel BTF with sched_ext_ops_cid members, kfuncs and
// enum scx_exit_kind values.
func buildSpec(t *testing.T, members, kfuncs []string, kinds map[string]uint64) *btf.Spec {
	t.Helper()
	u64 := &btf.Int{Name: "u64", Size: 8}
	st := &btf.Struct{Name: "sched_ext_ops_cid", Size: uint32(8 * len(members))}
	for i, m := range members {
		st.Members = append(st.Members, btf.Member{Name: m, Type: u64, Offset: btf.Bits(64 * i)})
	}
	types := []btf.Type{st}
	for _, k := range kfuncs {
		proto := &btf.FuncProto{Return: u64, Params: []btf.FuncParam{{Name: "cgroup_id", Type: u64}}}
		types = append(types, &btf.Func{Name: k, Type: proto, Linkage: btf.GlobalFunc})
	}
	e := &btf.Enum{Name: "scx_exit_kind", Size: 4}
	for _, n := range slices.Sorted(maps.Keys(kinds)) {
		e.Values = append(e.Values, btf.EnumValue{Name: n, Value: kinds[n]})
	}
	types = append(types, e)
	return marshalSpec(t, types)
}

func TestKernelWithoutSubScheds(t *testing.T) {
	// A 6.x kernel: no cid-form ops, no kfunc.
	caps := Kernel(kernelSpec(t, nil, false, true))
	for _, want := range []string{OpsCid, OpsSubCgroupID, OpsSubAttach, OpsSubDetach, KfuncSubDisp} {
		if !slices.Contains(caps.Missing, want) {
			t.Errorf("%q not reported missing: %v", want, caps.Missing)
		}
	}
	err := Require(caps, KfuncSubDisp, ExitKindEnum)
	if err == nil || err.Error() != "kernel lacks kfunc scx_bpf_sub_dispatch" {
		t.Errorf("Require = %v", err)
	}
}

func TestKernelMissingOneMember(t *testing.T) {
	caps := Kernel(kernelSpec(t, []string{"dispatch", "sub_attach", "sub_cgroup_id"}, true, true))
	if err := Require(caps, SubSchedItems...); err == nil || !strings.Contains(err.Error(), OpsSubDetach) {
		t.Errorf("Require = %v, want it to name %s", err, OpsSubDetach)
	}
}

func TestRequireUnprobedAndFailed(t *testing.T) {
	if err := Require(Kernel(kernelSpec(t, nil, false, false)), "something else"); err == nil || !strings.Contains(err.Error(), "not probed") {
		t.Errorf("Require of an unknown item = %v", err)
	}
	if err := Require(failedProbe("no BTF"), KfuncSubDisp); err == nil || !strings.Contains(err.Error(), "no BTF") {
		t.Errorf("Require after a failed probe = %v", err)
	}
}

func failedProbe(msg string) (c proto.Capabilities) { c.Err = msg; return c }

func marshalSpec(t *testing.T, types []btf.Type) *btf.Spec {
	t.Helper()
	b, err := btf.NewBuilder(types, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}
