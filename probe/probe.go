// Package probe finds out which sched_ext sub-scheduler features a kernel has.
//
// It reads the kernel's BTF (in the guest, /sys/kernel/btf/vmlinux) with
// cilium/ebpf's btf package, so it answers for the running kernel rather than
// for a config file that may not match it. Specs that need an item the probe
// did not find skip and name it.
package probe

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/scxcheck/scxcheck/proto"
)

// Items the probe looks for. Specs name them in Require.
const (
	OpsCid         = "struct sched_ext_ops_cid"
	OpsSubCgroupID = "sched_ext_ops_cid.sub_cgroup_id"
	OpsSubAttach   = "sched_ext_ops_cid.sub_attach"
	OpsSubDetach   = "sched_ext_ops_cid.sub_detach"
	KfuncSubDisp   = "kfunc scx_bpf_sub_dispatch"
	ExitKindEnum   = "enum scx_exit_kind"
	// RecursionPatch is scxcheck's test-only kernel patch that lets a
	// scheduler sub-dispatch its own cgroup (fixtures/kernel-patches).
	RecursionPatch = "sched_ext.test_self_sub_dispatch parameter"
)

// SubSchedItems are the items every sub-scheduler spec needs.
var SubSchedItems = []string{OpsCid, OpsSubCgroupID, OpsSubAttach, OpsSubDetach, KfuncSubDisp, ExitKindEnum}

// recursionParam is where the test-only patch exposes its switch.
const recursionParam = "/sys/module/sched_ext/parameters/test_self_sub_dispatch"

// Running probes the running kernel: its BTF and its sysfs.
func Running() proto.Capabilities {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return proto.Capabilities{Err: fmt.Sprintf("read kernel BTF: %v (the kernel needs CONFIG_DEBUG_INFO_BTF=y)", err)}
	}
	caps := Kernel(spec)
	if _, err := os.Stat(recursionParam); err == nil {
		caps.Have = append(caps.Have, RecursionPatch)
	} else {
		caps.Missing = append(caps.Missing, RecursionPatch)
	}
	return caps
}

// Kernel probes a kernel's BTF for the sub-scheduler items.
func Kernel(spec *btf.Spec) proto.Capabilities {
	var caps proto.Capabilities
	found := func(item string, ok bool) {
		if ok {
			caps.Have = append(caps.Have, item)
		} else {
			caps.Missing = append(caps.Missing, item)
		}
	}

	var ops *btf.Struct
	err := spec.TypeByName("sched_ext_ops_cid", &ops)
	found(OpsCid, err == nil)
	members := map[string]bool{}
	if ops != nil {
		for _, m := range ops.Members {
			members[m.Name] = true
		}
	}
	found(OpsSubCgroupID, members["sub_cgroup_id"])
	found(OpsSubAttach, members["sub_attach"])
	found(OpsSubDetach, members["sub_detach"])

	var fn *btf.Func
	found(KfuncSubDisp, spec.TypeByName("scx_bpf_sub_dispatch", &fn) == nil)

	var kinds *btf.Enum
	if err := spec.TypeByName("scx_exit_kind", &kinds); err == nil {
		caps.ExitKinds = make(map[string]int64, len(kinds.Values))
		for _, v := range kinds.Values {
			caps.ExitKinds[v.Name] = int64(v.Value)
		}
	}
	found(ExitKindEnum, kinds != nil)
	return caps
}

// Require returns an error naming every item in want that caps lacks, or nil.
func Require(caps proto.Capabilities, want ...string) error {
	if caps.Err != "" {
		return errors.New(caps.Err)
	}
	missing := map[string]bool{}
	for _, m := range caps.Missing {
		missing[m] = true
	}
	var lacks []string
	for _, w := range want {
		if missing[w] {
			lacks = append(lacks, w)
		} else if !slices.Contains(caps.Have, w) {
			lacks = append(lacks, w+" (not probed)")
		}
	}
	if len(lacks) == 0 {
		return nil
	}
	sort.Strings(lacks)
	return fmt.Errorf("kernel lacks %s", strings.Join(lacks, ", "))
}

// ExitKindName maps an exit kind value to its BTF name, or "" if unknown.
func ExitKindName(caps proto.Capabilities, kind int64) string {
	for name, v := range caps.ExitKinds {
		if v == kind {
			return name
		}
	}
	return ""
}
