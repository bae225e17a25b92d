package suites

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/proto"
)

// Capabilities (Linux 7.3, kernel/sched/ext/internal.h).
const (
	capEnqImmed = 1 << 0 // SCX_CAP_ENQ_IMMED, also SCX_CAP_BASE
	capEnq      = 1 << 1
	capPreempt  = 1 << 2
	capPerf     = 1 << 3
	capAll      = capEnqImmed | capEnq | capPreempt | capPerf

	eNODEV = -19
	// ePERMu64 is -EPERM as the fixtures store a return value in a u64.
	ePERMu64 = ^uint64(0)
)

// capsOf reads a scheduler's sysfs caps file: cap name to the cid list the
// kernel prints, e.g. "enq" → "0-1" ("" for none).
func capsOf(ctx context.Context, dir string) (map[string]string, error) {
	b, err := guest().ReadString(ctx, path.Join(dir, "caps"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(b, "\n"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s/caps: line %q", dir, line)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// capsFile returns a function for Eventually reading a caps file.
func capsFile(dir string) func(context.Context) (map[string]string, error) {
	return func(ctx context.Context) (map[string]string, error) { return capsOf(ctx, dir) }
}

// allCaps is a caps file holding every capability on the cids in list.
func allCaps(list string) map[string]string {
	return map[string]string{"enq_immed": list, "enq": list, "preempt": list, "perf": list}
}

// cidList prints cids 0..n-1 the way the kernel's %*pbl does.
func cidList(n int) string {
	if n == 1 {
		return "0"
	}
	return fmt.Sprintf("0-%d", n-1)
}

// eventsOf reads a scheduler's sysfs events file.
func eventsOf(ctx context.Context, dir string) (map[string]uint64, error) {
	b, err := guest().ReadString(ctx, path.Join(dir, "events"))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(b), "\n") {
		var k string
		var v uint64
		if _, err := fmt.Sscanf(line, "%s %d", &k, &v); err != nil {
			return nil, fmt.Errorf("%s/events: line %q: %w", dir, line, err)
		}
		out[k] = v
	}
	return out, nil
}

// caps runs a capability command and expects it to be carried out.
func capsCmd(ctx context.Context, s *Sched, op int, cgid, caps uint64, cids []int, out bool) proto.CommandResult {
	GinkgoHelper()
	res, err := s.Command(ctx, op, cgid, caps, cids, out)
	Expect(err).NotTo(HaveOccurred(), "capability command %d of %s on cgroup %d", op, s.Name, cgid)
	return res
}

var _ = Describe("sub-scheduler capabilities", Label("caps"), func() {
	BeforeEach(func(ctx SpecContext) { requireGeneration("7.3") })

	Context("when the parent grants nothing", func() {
		It("never runs the child's dispatch: scx_bpf_sub_dispatch returns false until the child stalls", func(ctx SpecContext) {
			const timeout = 3 * time.Second
			root := loadRoot(ctx, "root", map[string]uint64{"grant_caps": 0})
			t1 := newCgroup(ctx, "t1")
			child := loadWith(ctx, proto.LoadScheduler{Fixture: "child", Name: "capless", Cgroup: t1.Path, TimeoutMs: uint32(timeout / time.Millisecond)})
			Expect(capsOf(ctx, schedDir(t1.ID))).To(Equal(allCaps("")), "the kernel's record of the child's caps")
			start(ctx, t1, proto.WorkSleep, 1, workTime)

			stallsWithin(ctx, child, timeout)
			detachedFrom(ctx, root, t1)
			Expect(child.Counter("nr_dispatch")(ctx)).To(BeZero(), "the kernel ran the capless child's ops.dispatch")
			Expect(root.Counter("child_false[0]")(ctx)).To(BeNumerically(">", 0), "the root never sub-dispatched the child")
			Expect(root.Counter("child_true[0]")(ctx)).To(BeZero(), "a sub-dispatch of the capless child returned true")
			Expect(guest().Trace()).NotTo(HaveTraced("capless", "ecaps_updated"))
			stillRunning(ctx, root)
		})
	})

	Context("when the parent grants every capability on every CPU", func() {
		It("records the grant in sysfs and tells the child with sub_caps_updated, then sub_ecaps_updated on each CPU", func(ctx SpecContext) {
			root, t1, child := loadRootAndChild(ctx, "child", nil)
			n := guest().Hello.CPUs
			Expect(capsOf(ctx, schedDir())).To(Equal(allCaps(cidList(n))), "the root holds every capability")
			Expect(capsOf(ctx, schedDir(t1.ID))).To(Equal(allCaps(cidList(n))))
			Expect(root.Counter("child_grant_ret[0]")(ctx)).To(BeZero(), "scx_bpf_sub_grant in sub_attach")
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "grant", WithField("cgid", t1.ID), WithField("caps", capAll), WithField("ret", 0)))

			Eventually(guest().Trace, settle).Should(HaveTraced("child", "caps_updated", WithField("caps", capAll)))
			cids, err := child.Cmask(ctx, must(ctx, child.Counter("caps_updated_cmask")))
			Expect(err).NotTo(HaveOccurred())
			Expect(cids).To(HaveLen(n), "the cmask sub_caps_updated passed")

			finish(ctx, start(ctx, t1, proto.WorkSleep, 2, workTime))
			for cid := range n {
				Eventually(guest().Trace, settle).Should(HaveTraced("child", "ecaps_updated",
					WithField("cid", cid), WithField("before", 0), WithField("after", capAll), WithField("this", cid)))
				Expect(child.Counter(fmt.Sprintf("ecaps[%d]", cid))(ctx)).To(BeNumerically("==", capAll))
			}
			Expect(child.Counter("ecaps_cpu_ok")(ctx)).To(Equal(must(ctx, child.Counter("nr_ecaps_updated"))),
				"sub_ecaps_updated ran on a CPU other than the cid it reported")
			Expect(root.Counter("nr_caps_updated")(ctx)).To(BeZero(), "the root received sub_caps_updated")
			stillRunning(ctx, child)
		})
	})

	Context("when the parent grants each capability on its own CPUs", func() {
		// The other specs grant every capability on the same CPUs, where
		// a caps file printing one capability's mask on another's line
		// looks right.
		It("shows each capability with its own CPUs in sysfs, implied ones not added", func(ctx SpecContext) {
			Expect(guest().Hello.CPUs).To(BeNumerically(">=", 2), "this spec needs two CPUs")
			root := loadRoot(ctx, "root", map[string]uint64{"grant_caps": 0})
			t1 := newCgroup(ctx, "t1")
			loadSub(ctx, "child", "child", t1, nil)
			dir := schedDir(t1.ID)
			Expect(capsOf(ctx, dir)).To(Equal(allCaps("")))

			Expect(capsCmd(ctx, root, proto.CmdGrant, t1.ID, capEnq, []int{1}, false).Ret).To(BeZero(), "grant enq on cid 1")
			Expect(capsCmd(ctx, root, proto.CmdGrant, t1.ID, capPerf, []int{0}, false).Ret).To(BeZero(), "grant perf on cid 0")
			Expect(capsOf(ctx, dir)).To(Equal(map[string]string{"enq_immed": "", "enq": "1", "preempt": "", "perf": "0"}),
				"enq on cid 1 (its implied enq_immed not shown), perf on cid 0")

			Expect(capsCmd(ctx, root, proto.CmdGrant, t1.ID, capEnqImmed|capPreempt, []int{0}, false).Ret).To(BeZero(), "grant enq_immed and preempt on cid 0")
			Expect(capsOf(ctx, dir)).To(Equal(map[string]string{"enq_immed": "0", "enq": "1", "preempt": "0", "perf": "0"}))
			stillRunning(ctx, root)
		})
	})

	Context("when the parent grants on one CPU only", func() {
		It("dispatches the child on that CPU and nowhere else", func(ctx SpecContext) {
			Expect(guest().Hello.CPUs).To(BeNumerically(">=", 2), "this spec needs two CPUs")
			root := loadWith(ctx, proto.LoadScheduler{Fixture: "parent", Name: "root", GrantCids: []int{1}})
			t1 := newCgroup(ctx, "t1")
			child := loadSub(ctx, "child", "child", t1, nil)
			Expect(capsOf(ctx, schedDir(t1.ID))).To(Equal(allCaps("1")))

			finish(ctx, start(ctx, t1, proto.WorkSleep, 2, workTime))
			Expect(child.Counter("nr_moved")(ctx)).To(BeNumerically(">", 0), "the child ran none of its tasks")
			var onCPU = map[int]int{}
			for _, ev := range guest().Trace() {
				if ev.Fixture == "root" && ev.Event == "sub_dispatch" && ev.Field("cgid") == fmt.Sprint(t1.ID) && ev.Field("ret") == "1" {
					onCPU[ev.CPU]++
				}
			}
			Expect(onCPU).To(HaveKey(1), "no sub-dispatch of the child returned true on CPU 1")
			Expect(onCPU).NotTo(HaveKey(0), "a sub-dispatch of the child returned true on CPU 0, where it holds no capability")
			Expect(guest().Trace()).To(HaveTraced("child", "ecaps_updated", WithField("cid", 1), WithField("after", capAll)))
			Expect(guest().Trace()).NotTo(HaveTraced("child", "ecaps_updated", WithField("cid", 0)))
			stillRunning(ctx, child)
			stillRunning(ctx, root)
		})
	})

	Context("when the parent revokes a running child's capabilities", func() {
		It("empties the child's caps, tells it on every CPU and stops dispatching it", func(ctx SpecContext) {
			root, t1, child := loadRootAndChild(ctx, "child", nil)
			n := guest().Hello.CPUs
			start(ctx, t1, proto.WorkSleep, 2, 4*workTime)
			Eventually(ctx, child.Counter("nr_moved"), settle).Should(BeNumerically(">", 0))
			updates := must(ctx, child.Counter("nr_caps_updated"))

			res := capsCmd(ctx, root, proto.CmdRevoke, t1.ID, capAll, nil, false)
			Expect(res.Ret).To(BeZero())
			Expect(capsOf(ctx, schedDir(t1.ID))).To(Equal(allCaps("")))
			Eventually(ctx, child.Counter("nr_caps_updated"), settle).Should(BeNumerically(">", updates), "no sub_caps_updated for the revoke")
			for cid := range n {
				Eventually(guest().Trace, settle).Should(HaveTraced("child", "ecaps_updated",
					WithField("cid", cid), WithField("before", capAll), WithField("after", 0)))
			}
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", t1.ID), WithField("ret", 0)))
			dispatched := must(ctx, child.Counter("nr_dispatch"))
			Consistently(ctx, child.Counter("nr_dispatch"), 2*time.Second).Should(Equal(dispatched),
				"the kernel still ran the child's ops.dispatch after the revoke")
			stillRunning(ctx, root)
		})

		It("revokes from the child's whole subtree", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)
			n := guest().Hello.CPUs
			Expect(capsOf(ctx, schedDir(hier.a.ID, hier.b.ID))).To(Equal(allCaps(cidList(n))), "the middle parent passed its caps on")

			capsCmd(ctx, hier.root, proto.CmdRevoke, hier.a.ID, capEnq|capPreempt|capPerf, nil, false)
			Expect(capsOf(ctx, schedDir(hier.a.ID))).To(Equal(map[string]string{"enq_immed": cidList(n), "enq": "", "preempt": "", "perf": ""}))
			Expect(capsOf(ctx, schedDir(hier.a.ID, hier.b.ID))).To(Equal(map[string]string{"enq_immed": cidList(n), "enq": "", "preempt": "", "perf": ""}),
				"the grandchild kept caps its parent lost")
			Eventually(ctx, hier.leaf.Counter("caps_updated_caps"), settle).Should(BeNumerically("==", capEnq|capPreempt|capPerf))
			stillRunning(ctx, hier.root)
		})
	})

	Context("when a middle parent grants capabilities it does not hold", func() {
		It("grants none of them on those CPUs, returns -EPERM and names the CPUs in the denied mask", func(ctx SpecContext) {
			a, b := newCgroup(ctx, "a"), newCgroup(ctx, "a/b")
			loadRoot(ctx, "root", map[string]uint64{"grant_caps": capEnqImmed | capEnq})
			mid := loadWith(ctx, proto.LoadScheduler{Fixture: "parent", Name: "mid", Cgroup: a.Path, GrantDenied: true})
			loadSub(ctx, "child", "leaf", b, nil)
			n := guest().Hello.CPUs

			Expect(mid.Counter("child_grant_ret[0]")(ctx)).To(BeNumerically("==", ePERMu64), "scx_bpf_sub_grant of all caps by the middle parent")
			Expect(mid.GrantDenied(ctx)).To(HaveLen(n), "denied cids")
			Expect(capsOf(ctx, schedDir(a.ID, b.ID))).To(Equal(allCaps("")), "all-or-nothing per cid")
			Expect(capsOf(ctx, schedDir(a.ID))).To(Equal(map[string]string{"enq_immed": cidList(n), "enq": cidList(n), "preempt": "", "perf": ""}))
		})

		It("denies exactly the CPUs it holds nothing on", func(ctx SpecContext) {
			Expect(guest().Hello.CPUs).To(BeNumerically(">=", 2), "this spec needs two CPUs")
			a, b := newCgroup(ctx, "a"), newCgroup(ctx, "a/b")
			loadWith(ctx, proto.LoadScheduler{Fixture: "parent", Name: "root", GrantCids: []int{1}})
			mid := loadWith(ctx, proto.LoadScheduler{Fixture: "parent", Name: "mid", Cgroup: a.Path, GrantDenied: true})
			loadSub(ctx, "child", "leaf", b, nil)

			Expect(mid.Counter("child_grant_ret[0]")(ctx)).To(BeNumerically("==", ePERMu64))
			Expect(mid.GrantDenied(ctx)).To(Equal([]int{0}))
			Expect(capsOf(ctx, schedDir(a.ID, b.ID))).To(Equal(allCaps("1")))
		})
	})

	Context("when a parent grants to a sub-scheduler that is not its direct child", func() {
		It("exits the parent with SCX_EXIT_ERROR: not a direct child", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)

			_, _ = hier.root.Command(ctx, proto.CmdGrant, hier.b.ID, capEnq, nil, false) // the caller is aborted in the kfunc
			exitsWith(ctx, hier.root, "SCX_EXIT_ERROR", fmt.Sprintf("/: sub-%d is not a direct child", hier.b.ID))
			exitsWith(ctx, hier.mid, "SCX_EXIT_PARENT")
			exitsWith(ctx, hier.leaf, "SCX_EXIT_PARENT")
			Eventually(guest().KernelLog, settle).Should(HaveLogged(fmt.Sprintf("root: /: sub-%d is not a direct child", hier.b.ID)))
			onFairClass(ctx)
		})
	})

	Context("when a parent kills its child", func() {
		It("exits the child with SCX_EXIT_PARENT_KILL and the parent's message, and the child's children with SCX_EXIT_PARENT", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)

			res := capsCmd(ctx, hier.root, proto.CmdKill, hier.a.ID, 0, nil, false)
			Expect(res.Ret).To(BeZero())
			exitsWith(ctx, hier.mid, "SCX_EXIT_PARENT_KILL", fmt.Sprintf("killed by scxcheck parent cgroup %d", hier.a.ID))
			Expect(hier.mid.Exit(ctx)).To(HaveField("Reason", "killed by parent scheduler"))
			exitsWith(ctx, hier.leaf, "SCX_EXIT_PARENT")
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "mid" disabled (killed by parent scheduler)`))
			sysfsGone(ctx, schedDir(hier.a.ID))
			stillRunning(ctx, hier.root)
		})

		It("returns -ENODEV for a cgroup without a sub-scheduler and kills nothing", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", nil)
			t1, t2 := newCgroup(ctx, "t1"), newCgroup(ctx, "t2")
			child := loadSub(ctx, "child", "child", t1, nil)
			res := capsCmd(ctx, root, proto.CmdKill, t2.ID, 0, nil, false)
			Expect(res.Ret).To(BeNumerically("==", eNODEV))
			stillRunning(ctx, child)
			stillRunning(ctx, root)
		})
	})

	Context("when a child without capabilities inserts into a local DSQ", func() {
		It("exits the child with SCX_EXIT_ERROR_REENQ after the kernel's re-enqueue limit", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", map[string]uint64{"grant_caps": 0})
			t1 := newCgroup(ctx, "t1")
			child := loadSub(ctx, "child", "local", t1, map[string]uint64{"enqueue_local": 1})
			start(ctx, t1, proto.WorkSleep, 1, workTime)

			exitsWith(ctx, child, "SCX_EXIT_ERROR_REENQ", MatchRegexp(`\[\d+\] reenqueued 257 times without running$`))
			Expect(child.Exit(ctx)).To(HaveField("Reason", "reenqueue limit"))
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "local" disabled (reenqueue limit)`))
			stillRunning(ctx, root)
		})
	})

	Context("when a child without capabilities inserts with SCX_ENQ_RESCUE", func() {
		It("runs its tasks in rescue slices, counted as SCX_EV_SUB_RESCUE", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", map[string]uint64{"grant_caps": 0})
			t1 := newCgroup(ctx, "t1")
			child := loadSub(ctx, "child", "rescued", t1, map[string]uint64{"enqueue_local": 1, "rescue": 1})
			// Rescue slices are rationed (scx_rescue_bw_1024): every wake-up
			// of the worker, from its process start in the cgroup on, waits
			// for one. On an idle 2-core TCG host the worker needs about 10 s;
			// on a loaded one more than workWait, hence the longer bound and
			// the short workload (a few wake-ups are all the count needs).
			finishWithin(ctx, start(ctx, t1, proto.WorkSleep, 1, workTime/20), 3*workWait)
			ev, err := eventsOf(ctx, schedDir(t1.ID))
			Expect(err).NotTo(HaveOccurred())
			Expect(ev).To(HaveKeyWithValue("SCX_EV_SUB_RESCUE", BeNumerically(">", 0)))
			stillRunning(ctx, child)
			stillRunning(ctx, root)
		})
	})
})
