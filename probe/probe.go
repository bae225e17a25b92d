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

// Items of the capability generation of the API (Linux 7.3): per-CPU
// capabilities a parent grants its children.
const (
	KfuncSubGrant      = "kfunc scx_bpf_sub_grant"
	KfuncSubRevoke     = "kfunc scx_bpf_sub_revoke"
	KfuncSubCaps       = "kfunc scx_bpf_sub_caps"
	KfuncSubKill       = "kfunc scx_bpf_sub_kill_bstr"
	KfuncOnlineCmask   = "kfunc scx_bpf_online_cmask"
	OpsSubCapsUpdated  = "sched_ext_ops_cid.sub_caps_updated"
	OpsSubEcapsUpdated = "sched_ext_ops_cid.sub_ecaps_updated"
	OpsRescueBandwidth = "sched_ext_ops_cid.rescue_bandwidth_ppt"
	OpsRescueQuantum   = "sched_ext_ops_cid.rescue_quantum_us"
	ExitParentKill     = "exit kind SCX_EXIT_PARENT_KILL"
	ExitErrorReenq     = "exit kind SCX_EXIT_ERROR_REENQ"
	ExitErrorRescue    = "exit kind SCX_EXIT_ERROR_RESCUE"
)

// SubSchedItems are the items every sub-scheduler spec needs.
var SubSchedItems = []string{OpsCid, OpsSubCgroupID, OpsSubAttach, OpsSubDetach, KfuncSubDisp, ExitKindEnum}

// CapsItems are the items of the capability generation (Linux 7.3).
var CapsItems = []string{KfuncSubGrant, KfuncSubRevoke, KfuncSubCaps, KfuncSubKill, KfuncOnlineCmask,
	OpsSubCapsUpdated, OpsSubEcapsUpdated, OpsRescueBandwidth, OpsRescueQuantum, ExitParentKill, ExitErrorReenq, ExitErrorRescue}

// A Generation is one shape of the sub-scheduler API, named after the first
// kernel release that had it. A kernel is of the newest generation whose
// items it has (and those of every older one).
type Generation struct {
	Name  string   // e.g. "7.3"
	About string   // what it added, in a few words
	Items []string // what the probe must find
}

// Generations are the API generations scxcheck knows, oldest first.
var Generations = []Generation{
	{Name: "7.2", About: "cgroup sub-schedulers, scx_bpf_sub_dispatch", Items: SubSchedItems},
	{Name: "7.3", About: "per-CPU capabilities a parent grants its children", Items: CapsItems},
}

// GenerationOf returns the API generation of a probed kernel: the name of
// the newest generation whose items (and every older one's) it has, or ""
// when it has no sub-scheduler API at all.
func GenerationOf(caps proto.Capabilities) string {
	gen := ""
	for _, g := range Generations {
		if Require(caps, g.Items...) != nil {
			break
		}
		gen = g.Name
	}
	return gen
}

// Describe says which generation a probed kernel is, for run headers and
// reports: "7.3 (per-CPU capabilities a parent grants its children)", plus
// the sub-scheduler items newer than any generation scxcheck knows.
func Describe(caps proto.Capabilities) string {
	gen := GenerationOf(caps)
	if gen == "" {
		return "none (no sched_ext sub-scheduler API in the kernel's BTF)"
	}
	var about string
	for _, g := range Generations {
		if g.Name == gen {
			about = g.About
		}
	}
	s := fmt.Sprintf("%s (%s)", gen, about)
	if len(caps.Unknown) > 0 {
		s += fmt.Sprintf("; newer items scxcheck does not know: %s", strings.Join(caps.Unknown, ", "))
	}
	return s
}

// RequireGeneration returns an error unless the kernel has the items of
// generation name (and so every older one's), saying which generation it
// needs and what the kernel lacks.
func RequireGeneration(caps proto.Capabilities, name string) error {
	for _, g := range Generations {
		if err := Require(caps, g.Items...); err != nil {
			return fmt.Errorf("kernel lacks sub-scheduler API %s (%s): %s", g.Name, g.About, strings.TrimPrefix(err.Error(), "kernel lacks "))
		}
		if g.Name == name {
			return nil
		}
	}
	return fmt.Errorf("scxcheck knows no sub-scheduler API generation %q", name)
}

// known are the sub-scheduler kfuncs and ops members of every generation:
// anything else the probe finds under those names is newer than scxcheck.
func known(item string) bool {
	for _, g := range Generations {
		if slices.Contains(g.Items, item) {
			return true
		}
	}
	return false
}

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

	found(OpsSubCapsUpdated, members["sub_caps_updated"])
	found(OpsSubEcapsUpdated, members["sub_ecaps_updated"])
	found(OpsRescueBandwidth, members["rescue_bandwidth_ppt"])
	found(OpsRescueQuantum, members["rescue_quantum_us"])
	// Members of a generation after the newest known: sub_* callbacks and
	// rescue_* settings scxcheck does not know yet.
	if ops != nil {
		for _, m := range ops.Members {
			item := "sched_ext_ops_cid." + m.Name
			if (strings.HasPrefix(m.Name, "sub_") || strings.HasPrefix(m.Name, "rescue_")) && !known(item) {
				caps.Unknown = append(caps.Unknown, item)
			}
		}
	}

	kfunc := func(name string) bool {
		var fn *btf.Func
		return spec.TypeByName(name, &fn) == nil
	}
	found(KfuncSubDisp, kfunc("scx_bpf_sub_dispatch"))
	for _, item := range []string{KfuncSubGrant, KfuncSubRevoke, KfuncSubCaps, KfuncSubKill, KfuncOnlineCmask} {
		found(item, kfunc(strings.TrimPrefix(item, "kfunc ")))
	}
	for t, err := range spec.All() {
		if err != nil {
			break
		}
		// KF_IMPLICIT_ARGS kfuncs have a *_impl twin in BTF: not an API item.
		if fn, ok := t.(*btf.Func); ok && strings.HasPrefix(fn.Name, "scx_bpf_sub_") &&
			!strings.HasSuffix(fn.Name, "_impl") && !known("kfunc "+fn.Name) {
			caps.Unknown = append(caps.Unknown, "kfunc "+fn.Name)
		}
	}
	slices.Sort(caps.Unknown)

	var kinds *btf.Enum
	if err := spec.TypeByName("scx_exit_kind", &kinds); err == nil {
		caps.ExitKinds = make(map[string]int64, len(kinds.Values))
		for _, v := range kinds.Values {
			caps.ExitKinds[v.Name] = int64(v.Value)
		}
	}
	found(ExitKindEnum, kinds != nil)
	for _, item := range []string{ExitParentKill, ExitErrorReenq, ExitErrorRescue} {
		_, ok := caps.ExitKinds[strings.TrimPrefix(item, "exit kind ")]
		found(item, ok)
	}
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
