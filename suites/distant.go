package suites

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/proto"
)

// distantMsg is the kernel's message for a sub-dispatch of a non-child.
func distantMsg(id uint64) string {
	return fmt.Sprintf("trying to dispatch a distant sub-sched on cgroup %d", id)
}

// hierarchy is root → mid on /a → leaf on /a/b, with a workload in each
// of /, /a and /a/b.
type hierarchy struct {
	threeLevels
	work []*Workload
}

// buildHierarchy loads the three levels, the root told at load time which
// cgroup id to sub-dispatch besides its children (rootExtra, if not nil),
// and starts the workloads.
func buildHierarchy(ctx context.Context, rootExtra func(a, b Cgroup) uint64) hierarchy {
	GinkgoHelper()
	var knobs func(a, b Cgroup) map[string]uint64
	if rootExtra != nil {
		knobs = func(a, b Cgroup) map[string]uint64 { return map[string]uint64{"extra_dispatch_cgid": rootExtra(a, b)} }
	}
	h := hierarchy{threeLevels: loadThreeLevels(ctx, knobs)}
	for _, cg := range []Cgroup{{}, h.a, h.b} {
		h.work = append(h.work, start(ctx, cg, proto.WorkSleep, 1, 2*workTime))
	}
	return h
}

// distantCallFailed checks that the scheduler name traced its
// scx_bpf_sub_dispatch() of cg (the fixture's extra slot, -1) and that the
// kernel returned false to it, never true.
func distantCallFailed(ctx context.Context, name string, cg Cgroup) {
	GinkgoHelper()
	Eventually(ctx, guest().Trace, settle).Should(HaveTraced(name, "sub_dispatch", WithField("cgid", cg.ID), WithField("slot", -1), WithField("ret", 0)))
	Expect(guest().Trace()).NotTo(HaveTraced(name, "sub_dispatch", WithField("cgid", cg.ID), WithField("ret", 1)),
		"scx_bpf_sub_dispatch of a sub-scheduler that is not a direct child returned true")
}

var _ = describeSubSched("scx_bpf_sub_dispatch of a sub-scheduler that is not a direct child", "distant", func() {
	Context("when the root dispatches its grandchild", func() {
		It("exits the caller with SCX_EXIT_ERROR and takes its descendants down with SCX_EXIT_PARENT", func(ctx SpecContext) {
			h := buildHierarchy(ctx, func(_, b Cgroup) uint64 { return b.ID })

			exitsWith(ctx, h.root, "SCX_EXIT_ERROR", distantMsg(h.b.ID))
			// The wrong call really happened, and returned false: the root
			// traced it. (A kernel that errors but returns true passes every
			// other check here: mutate's survivor ext.c:9466:replace-return.)
			distantCallFailed(ctx, "root", h.b)
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF scheduler "root" disabled (runtime error)`))
			Eventually(guest().KernelLog, settle).Should(HaveLogged("root: " + distantMsg(h.b.ID)))
			exitsWith(ctx, h.mid, "SCX_EXIT_PARENT")
			exitsWith(ctx, h.leaf, "SCX_EXIT_PARENT")
			Expect(h.mid.Exit(ctx)).To(HaveField("Reason", "parent exiting"))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("root", "root"))

			for _, w := range h.work {
				finish(ctx, w)
			}
			onFairClass(ctx)
			Expect(guest().RemoveCgroup(ctx, h.b)).To(Succeed())
			Expect(guest().RemoveCgroup(ctx, h.a)).To(Succeed())
		})
	})

	Context("when a sub-scheduler dispatches its sibling", func() {
		It("exits the caller, not the sibling or the root", func(ctx SpecContext) {
			s1, s2 := newCgroup(ctx, "s1"), newCgroup(ctx, "s2")
			root := loadRoot(ctx, "root", nil)
			caller := loadSub(ctx, "parent", "caller", s1, map[string]uint64{"extra_dispatch_cgid": s2.ID})
			sibling := loadSub(ctx, "child", "sibling", s2, nil)
			w1, w2 := start(ctx, s1, proto.WorkSleep, 1, workTime), start(ctx, s2, proto.WorkSleep, 1, workTime)

			exitsWith(ctx, caller, "SCX_EXIT_ERROR", distantMsg(s2.ID))
			distantCallFailed(ctx, "caller", s2)
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "caller" disabled (runtime error)`))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("caller", fmt.Sprintf("sub1-%d %s", s1.ID, s1.Rel)))
			detachedFrom(ctx, root, s1)
			finish(ctx, w1)
			finish(ctx, w2)
			stillRunning(ctx, root)
			stillRunning(ctx, sibling)
		})
	})

	Context("when a sub-scheduler dispatches its own cgroup", func() {
		It("exits the caller with SCX_EXIT_ERROR", func(ctx SpecContext) {
			a := newCgroup(ctx, "a")
			root := loadRoot(ctx, "root", nil)
			self := loadSub(ctx, "parent", "self", a, map[string]uint64{"extra_dispatch_cgid": a.ID})
			w := start(ctx, a, proto.WorkSleep, 1, workTime)

			exitsWith(ctx, self, "SCX_EXIT_ERROR", distantMsg(a.ID))
			distantCallFailed(ctx, "self", a)
			detachedFrom(ctx, root, a)
			finish(ctx, w)
			stillRunning(ctx, root)
		})
	})

	Context("when the root dispatches only its direct children", func() {
		// The honesty check: the same hierarchy without the wrong dispatch
		// must not satisfy the matchers the specs above rely on.
		It("does not match the distant-dispatch exit", func(ctx SpecContext) {
			h := buildHierarchy(ctx, nil)
			for _, w := range h.work {
				finish(ctx, w)
			}
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", h.a.ID), WithField("ret", 1)))
			for _, s := range []*Sched{h.root, h.mid, h.leaf} {
				stillRunning(ctx, s)
			}
			Expect(guest().KernelLog()).NotTo(HaveLogged("distant sub-sched"))
			Expect(guest().Dump()).NotTo(HaveDumpHeader("root", "root"))
		})
	})
})
