package suites

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = describeSubSched("scx_bpf_sub_dispatch", "dispatch", func() {
	Context("when a parent scheduler loads as root", func() {
		It("enables sched_ext with a sub-scheduler directory", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			Expect(guest().ReadString(ctx, "/sys/kernel/sched_ext/state")).To(Equal("enabled\n"))
			Expect(guest().ReadString(ctx, "/sys/kernel/sched_ext/root/ops")).To(Equal("parent\n"))
			_, err := guest().ReadDir(ctx, "/sys/kernel/sched_ext/root/sub")
			Expect(err).NotTo(HaveOccurred(), "the root's sub/ directory")
		})
	})

	Context("when a child attaches on a cgroup", func() {
		var parent *Sched
		var t1 Cgroup

		BeforeEach(func(ctx SpecContext) {
			parent = loadRoot(ctx, "parent", nil)
			t1 = newCgroup(ctx, "t1")
		})

		It("is announced by sub_attach, sysfs and the kernel log", func(ctx SpecContext) {
			child := loadSub(ctx, "child", "child", t1, nil)
			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_attach",
				WithField("cgid", t1.ID), WithField("path", t1.Rel), WithField("ret", 0), WithField("child", "child")))
			Expect(guest().ReadString(ctx, fmt.Sprintf("/sys/kernel/sched_ext/root/sub/sub-%d/ops", t1.ID))).To(Equal("child\n"))
			stillRunning(ctx, child)
			stillRunning(ctx, parent)
		})

		It("runs the cgroup's tasks only through the parent's sub-dispatch, and the others on the parent", func(ctx SpecContext) {
			child := loadSub(ctx, "child", "child", t1, nil)
			// Workers are forked into the cgroup (CLONE_INTO_CGROUP), so
			// they belong to the child. Sleep/wake workers pass through
			// enqueue and dispatch at every wakeup; a CPU hog alone on a
			// CPU can keep running as prev without being dispatched.
			inside := start(ctx, t1, proto.WorkSleep, 2, longWork)
			outside := start(ctx, Cgroup{}, proto.WorkSleep, 2, longWork)
			ownedBy(ctx, inside, "child")
			ownedBy(ctx, outside, "parent")
			keepsRunning(ctx, inside)
			keepsRunning(ctx, outside)

			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t1.ID), WithField("ret", 1)))
			Eventually(guest().Trace, settle).Should(HaveTraced("child", "dispatch", WithField("moved", Not(Equal("0")))))
			Expect(child.Counter("nr_moved")(ctx)).To(BeNumerically(">", 0), "the child ran none of its tasks")
			Expect(parent.Counter("child_true[0]")(ctx)).To(BeNumerically(">", 0), "no sub-dispatch of the child returned true")
			// Every dispatch of the child was a sub-dispatch by the parent:
			// the kernel never calls a child's ops.dispatch on its own.
			Expect(child.Counter("nr_dispatch")(ctx)).To(BeNumerically("<=", must(ctx, parent.Counter("nr_sub_true"))+must(ctx, parent.Counter("nr_sub_false"))),
				"the child's ops.dispatch ran more often than its parent sub-dispatched it")
			stillRunning(ctx, child)
			stillRunning(ctx, parent)
		})

		It("returns true from scx_bpf_sub_dispatch only when the CPU has something to run after the call, and whenever the call moved a task there", func(ctx SpecContext) {
			t2 := newCgroup(ctx, "t2")
			loadSub(ctx, "child", "child", t1, nil)
			loadSub(ctx, "child", "child2", t2, nil)
			for _, cg := range []Cgroup{{}, t1, t2} {
				start(ctx, cg, proto.WorkSleep, 2, longWork)
			}
			// Each call is checked in the parent against what happened
			// during it (fixtures/README.md: sub-dispatch accounting).
			Eventually(ctx, parent.Counter("nr_ret_checked"), workWait).Should(BeNumerically(">=", 2000), "sub-dispatch calls checked")
			c, err := parent.Counters(ctx)
			Expect(err).NotTo(HaveOccurred())
			AddReportEntry("return values checked", fmt.Sprintf("checked %d, true after a move %d, false with nothing to run %d, true with nothing to run %d, false after a move %d",
				c["nr_ret_checked"], c["nr_ret_true_moved"], c["nr_ret_false_idle"], c["nr_ret_true_unexpected"], c["nr_ret_false_unexpected"]))
			Expect(parent.Counter("nr_ret_true_unexpected")(ctx)).To(BeZero(), "true although the call gave the CPU nothing to run")
			Expect(parent.Counter("nr_ret_false_unexpected")(ctx)).To(BeZero(), "false although the call moved a task to the local DSQ")
			Expect(parent.Counter("nr_ret_true_moved")(ctx)).To(BeNumerically(">", 0), "no call that moved a task returned true")
			Expect(parent.Counter("nr_ret_false_idle")(ctx)).To(BeNumerically(">", 0), "no call that moved nothing returned false")
			Expect(guest().Trace()).NotTo(HaveTraced("parent", "ret_mismatch"))
			stillRunning(ctx, parent)
		})

		It("gives two children side by side both progress", func(ctx SpecContext) {
			t2 := newCgroup(ctx, "t2")
			a := loadSub(ctx, "child", "child_a", t1, nil)
			b := loadSub(ctx, "child", "child_b", t2, nil)
			w1 := start(ctx, t1, proto.WorkSleep, 2, workTime)
			w2 := start(ctx, t2, proto.WorkSleep, 2, workTime)
			finish(ctx, w1)
			finish(ctx, w2)
			Expect(a.Counter("nr_moved")(ctx)).To(BeNumerically(">", 0))
			Expect(b.Counter("nr_moved")(ctx)).To(BeNumerically(">", 0))
			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t1.ID), WithField("ret", 1)))
			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t2.ID), WithField("ret", 1)))
		})

		It("hands the tasks back to the parent when its link closes", func(ctx SpecContext) {
			child := loadSub(ctx, "child", "child", t1, nil)
			w := start(ctx, t1, proto.WorkSleep, 2, longWork)
			ownedBy(ctx, w, "child")
			Eventually(ctx, child.Counter("nr_moved"), settle).Should(BeNumerically(">", 0))
			Expect(child.Detach(ctx)).To(Succeed())

			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_detach", WithField("cgid", t1.ID)))
			exitsWith(ctx, child, "SCX_EXIT_UNREG")
			sysfsGone(ctx, schedDir(t1.ID))
			// Before switching a task over, the kernel initializes it for
			// the parent: ops.init_task, not forked. The workers were forked
			// into the child's cgroup, so the parent never saw them before.
			for _, pid := range w.PIDs {
				Eventually(ctx, guest().Trace, settle).Should(HaveTraced("parent", "init_task", WithField("tgid", pid), WithField("fork", 0)),
					"the parent's ops.init_task never ran for the handed-back task %d", pid)
			}
			ownedBy(ctx, w, "parent")
			keepsRunning(ctx, w)
			stillRunning(ctx, parent)
		})
	})

	Context("when the parent gives a CPU one task at a time", func() {
		// The kernel calls ops.dispatch only when the CPU's local DSQ is
		// empty, and hands a child its prev only from there. The parent's
		// default dispatch moves one of its own tasks behind every task a
		// child's dispatch moved, so a child's task that stops (its slice
		// used up, or blocking) is followed by that task without a
		// dispatch. Measured: of the 241 to 1005 times the child's tasks
		// started running in a run of this spec, 1 to 3 had nothing queued
		// behind them, and the child got prev exactly that often; a run
		// with none timed out (docs/report.md). With own_if_empty the
		// parent moves its own task only onto an empty local DSQ: a
		// dispatch gives the CPU one task, and the kernel must hand the
		// child its task as prev when that stops.
		It("hands the child's ops.dispatch its own task as prev, never another scheduler's", func(ctx SpecContext) {
			loadRoot(ctx, "parent", map[string]uint64{"own_if_empty": 1})
			t1 := newCgroup(ctx, "t1")
			child := loadSub(ctx, "child", "child", t1, nil)
			hog := start(ctx, t1, proto.WorkCPU, 1, longWork)
			// The root's sleepers stop about every millisecond: each stop
			// is a dispatch with the root's task as prev, in which the
			// parent sub-dispatches the child first, and the kernel must
			// hand it no prev.
			start(ctx, Cgroup{}, proto.WorkSleep, 2, longWork)
			started := time.Now()
			Eventually(ctx, child.Counter("nr_prev"), workWait).Should(BeNumerically(">", 0), "the child's dispatch never got its running task as prev")
			first := time.Since(started)
			// Most of the child's dispatches follow a stop of a root task:
			// enough of them for the second half of the claim.
			Eventually(ctx, child.Counter("nr_dispatch"), workWait).Should(BeNumerically(">=", 300), "sub-dispatches of the child")
			c, err := child.Counters(ctx)
			Expect(err).NotTo(HaveOccurred())
			AddReportEntry("prev handed", fmt.Sprintf("the first after %s; %d of the child's %d dispatches got a prev",
				first.Round(time.Millisecond), c["nr_prev"], c["nr_dispatch"]))
			var tgids []int
			for i := range 8 {
				if t := c[fmt.Sprintf("prev_tgid[%d]", i)]; t != 0 {
					tgids = append(tgids, int(t))
				}
			}
			Expect(tgids).To(HaveEach(BeElementOf(hog.PIDs)), "prev tasks the child got that are not its own")
			stillRunning(ctx, child)
		})
	})

	Context("when a child's dispatch never gives the CPU anything", func() {
		// The child puts its task back into its own queue on every call:
		// the kernel's dispatch loop must give up after SCX_DSP_MAX_LOOPS
		// (32) rounds per sub-dispatch, and the CPU go on with the rest.
		It("breaks out of the child's dispatch loop and the CPU goes on, until the child stalls", func(ctx SpecContext) {
			const timeout = 3 * time.Second
			const maxLoops = 32
			parent := loadRoot(ctx, "parent", nil)
			t1 := newCgroup(ctx, "t1")
			child := loadWith(ctx, proto.LoadScheduler{Fixture: "child", Name: "spinner", Cgroup: t1.Path,
				TimeoutMs: uint32(timeout / time.Millisecond), Knobs: map[string]uint64{"requeue": 1}})
			start(ctx, t1, proto.WorkSleep, 1, longWork)
			outside := start(ctx, Cgroup{}, proto.WorkSleep, 1, longWork)
			Eventually(ctx, child.Counter("nr_requeue"), settle).Should(BeNumerically(">", 100))
			keepsRunning(ctx, outside)
			calls := must(ctx, parent.Counter("child_true[0]")) + must(ctx, parent.Counter("child_false[0]"))
			rounds := must(ctx, child.Counter("nr_dispatch"))
			Expect(calls).To(BeNumerically(">", 0))
			Expect(float64(rounds)/float64(calls)).To(And(BeNumerically(">", 1.5), BeNumerically("<=", maxLoops)),
				"the child's ops.dispatch ran %d times in %d sub-dispatches", rounds, calls)
			stallsWithin(ctx, child, timeout)
			detachedFrom(ctx, parent, t1)
			stillRunning(ctx, parent)
		})
	})

	Context("when the parent's child table is full", func() {
		It("rejects one child more with parent rejected (-28) and keeps the others", func(ctx SpecContext) {
			parent := loadRoot(ctx, "parent", map[string]uint64{"capacity": 1})
			t1, t2 := newCgroup(ctx, "t1"), newCgroup(ctx, "t2")
			first := loadSub(ctx, "child", "first", t1, nil)
			extra, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "extra", Cgroup: t2.Path})
			Expect(err).NotTo(HaveOccurred(), "link create succeeds; the rejection arrives as exit info")
			exitsWith(ctx, extra, "SCX_EXIT_ERROR", "parent rejected (-28)")
			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_attach", WithField("cgid", t2.ID), WithField("ret", -28)))
			Expect(guest().Trace()).NotTo(HaveTraced("parent", "sub_detach", WithField("cgid", t2.ID)), "sub_detach for a child the parent rejected")
			w := start(ctx, t1, proto.WorkSleep, 1, workTime)
			finish(ctx, w)
			stillRunning(ctx, first)
			stillRunning(ctx, parent)
		})
	})

	Context("when the target cgroup id is unknown", func() {
		It("returns false and nothing exits", func(ctx SpecContext) {
			const unknown = 999999
			parent := loadRoot(ctx, "parent", map[string]uint64{"extra_dispatch_cgid": unknown})
			finish(ctx, start(ctx, Cgroup{}, proto.WorkSleep, 1, workTime))
			Eventually(guest().Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", unknown), WithField("ret", 0)))
			Expect(guest().Trace()).NotTo(HaveTraced("parent", "sub_dispatch", WithField("cgid", unknown), WithField("ret", 1)))
			Expect(parent.Counter("nr_extra_false")(ctx)).To(BeNumerically(">", 0))
			stillRunning(ctx, parent)
		})
	})

	Context("when the kfunc is called from ops.enqueue", func() {
		It("fails verification with a clear verifier log", func(ctx SpecContext) {
			_, err := load(ctx, proto.LoadScheduler{Fixture: "badenqueue", Name: "badenqueue"})
			Expect(err).To(MatchError(ContainSubstring("calling kernel function scx_bpf_sub_dispatch is not allowed")))
		})
	})

	Context("when link create fails", func() {
		It("says ENODEV when no root scheduler is loaded", func(ctx SpecContext) {
			t1 := newCgroup(ctx, "t1")
			_, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "child", Cgroup: t1.Path})
			Expect(err).To(MatchError(unix.ENODEV))
		})

		It("says EBUSY for a second child on the same cgroup", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			t1 := newCgroup(ctx, "t1")
			loadSub(ctx, "child", "child", t1, nil)
			_, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "again", Cgroup: t1.Path})
			Expect(err).To(MatchError(unix.EBUSY))
		})

		It("says EOPNOTSUPP below a parent without sub_attach", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			t1 := newCgroup(ctx, "t1")
			loadSub(ctx, "child", "child", t1, nil)
			t2 := newCgroup(ctx, "t1/t2")
			_, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "grandchild", Cgroup: t2.Path})
			Expect(err).To(MatchError(unix.EOPNOTSUPP))
		})

		It("says ENOENT for an id that is not a cgroup2 cgroup", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			_, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "child", CgroupID: 1 << 40})
			Expect(err).To(MatchError(unix.ENOENT))
		})

		It("says EINVAL for a cid-form scheduler without an arena", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			t1 := newCgroup(ctx, "t1")
			_, err := load(ctx, proto.LoadScheduler{Fixture: "noarena", Name: "noarena", Cgroup: t1.Path})
			Expect(err).To(MatchError(unix.EINVAL))
			Eventually(guest().KernelLog, settle).Should(HaveLogged("cid-form scheduler must use a BPF arena map"))
		})

		It("refuses a cpu-form child with sub-sched requires cid-form struct_ops", func(ctx SpecContext) {
			loadRoot(ctx, "parent", nil)
			t1 := newCgroup(ctx, "t1")
			child, err := load(ctx, proto.LoadScheduler{Fixture: "cpuform", Name: "cpuform", Cgroup: t1.Path})
			if err != nil {
				Expect(err).To(MatchError(ContainSubstring("sub-sched requires cid-form struct_ops")))
				return
			}
			Eventually(func() (string, error) {
				info, err := child.Exit(ctx)
				return info.Msg, err
			}, settle).Should(ContainSubstring("sub-sched requires cid-form struct_ops"))
		})
	})
})
