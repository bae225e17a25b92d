package probe

import (
	"bytes"
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

func TestKernelHasEverything(t *testing.T) {
	caps := Kernel(kernelSpec(t, []string{"dispatch", "sub_attach", "sub_detach", "sub_cgroup_id"}, true, true))
	if len(caps.Missing) != 0 {
		t.Fatalf("missing %v", caps.Missing)
	}
	if err := Require(caps, SubSchedItems...); err != nil {
		t.Fatal(err)
	}
	if caps.ExitKinds["SCX_EXIT_ERROR"] != 1024 || ExitKindName(caps, 68) != "SCX_EXIT_PARENT" {
		t.Errorf("exit kinds %v", caps.ExitKinds)
	}
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
