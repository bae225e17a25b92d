package suites

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

// Timeouts for waiting on the kernel under TCG: enable and exit take a few
// hundred milliseconds; a second of workload takes a few seconds.
const (
	settle   = 10 * time.Second
	workTime = 1 * time.Second
	workWait = 30 * time.Second
)

// loadRoot loads the parent fixture as the root scheduler.
func loadRoot(name string, knobs map[string]uint64) *Sched {
	GinkgoHelper()
	s, err := guest.Load(proto.LoadScheduler{Fixture: "parent", Name: name, Knobs: knobs})
	Expect(err).NotTo(HaveOccurred(), "load %s as root", name)
	Eventually(guest.KernelLog, settle).Should(HaveLogged(fmt.Sprintf(`BPF scheduler "%s" enabled`, name)))
	return s
}

// loadSub loads a fixture as a sub-scheduler of a cgroup and waits for the
// kernel to enable it.
func loadSub(fixture, name string, cg Cgroup, knobs map[string]uint64) *Sched {
	GinkgoHelper()
	s, err := guest.Load(proto.LoadScheduler{Fixture: fixture, Name: name, Cgroup: cg.Path, Knobs: knobs})
	Expect(err).NotTo(HaveOccurred(), "load %s on %s", name, cg.Path)
	Eventually(guest.KernelLog, settle).Should(HaveLogged(fmt.Sprintf(`BPF sub-scheduler "%s" enabled`, name)))
	return s
}

func newCgroup(name string) Cgroup {
	GinkgoHelper()
	cg, err := guest.NewCgroup(name)
	Expect(err).NotTo(HaveOccurred())
	return cg
}

func start(cg Cgroup, kind string, n int, d time.Duration) *Workload {
	GinkgoHelper()
	w, err := guest.Start(cg.Path, kind, n, d)
	Expect(err).NotTo(HaveOccurred())
	return w
}

// finish waits for a workload and expects every worker to have exited cleanly.
func finish(w *Workload) {
	GinkgoHelper()
	done, err := w.Wait(workWait)
	Expect(err).NotTo(HaveOccurred())
	Expect(done.Done).To(BeTrue(), "workload %d still running after %s: %+v", w.ID, workWait, done)
	Expect(done.Failed).To(BeEmpty())
}

// stillRunning checks that a scheduler runs, in its own view (no exit info)
// and the kernel's (sched_ext enabled, its sysfs directory there with its
// name, no line in the kernel log saying it was disabled). A failure is of
// class exit: the kernel took down a scheduler it should have kept.
func stillRunning(s *Sched) {
	GinkgoHelper()
	g := classed(outcome.Exit)
	g.Expect(s.Exit()).To(HaveField("Kind", BeZero()), "%s exited", s.Name)
	g.Expect(guest.ReadFile("/sys/kernel/sched_ext/state")).To(Equal("enabled\n"), "sched_ext state while %s should run", s.Name)
	dir, err := s.SysfsDir()
	g.Expect(err).NotTo(HaveOccurred(), "the kernel shows no directory for %s", s.Name)
	g.Expect(guest.ReadFile(dir+"/ops")).To(Equal(s.Name+"\n"), "%s/ops", dir)
	g.Expect(guest.KernelLog()).NotTo(HaveLogged(s.disabledLine()), "the kernel disabled %s", s.Name)
}

var _ = Describe("scx_bpf_sub_dispatch", Label("dispatch"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	Context("when a parent scheduler loads as root", func() {
		It("enables sched_ext with a sub-scheduler directory", func() {
			loadRoot("parent", nil)
			Expect(guest.ReadFile("/sys/kernel/sched_ext/state")).To(Equal("enabled\n"))
			Expect(guest.ReadFile("/sys/kernel/sched_ext/root/ops")).To(Equal("parent\n"))
			var dir proto.DirEntries
			Expect(guest.Call(GinkgoT().Context(), "ReadDir", proto.Path{Path: "/sys/kernel/sched_ext/root/sub"}, &dir)).To(Succeed())
		})
	})

	Context("when a child attaches on a cgroup", func() {
		var parent *Sched
		var t1 Cgroup

		BeforeEach(func() {
			parent = loadRoot("parent", nil)
			t1 = newCgroup("t1")
		})

		It("is announced by sub_attach, sysfs and the kernel log", func() {
			child := loadSub("child", "child", t1, nil)
			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_attach",
				WithField("cgid", t1.ID), WithField("path", t1.Rel), WithField("ret", 0), WithField("child", "child")))
			Expect(guest.ReadFile(fmt.Sprintf("/sys/kernel/sched_ext/root/sub/sub-%d/ops", t1.ID))).To(Equal("child\n"))
			stillRunning(child)
			stillRunning(parent)
		})

		It("runs the cgroup's tasks only through the parent's sub-dispatch, and the others on the parent", func() {
			child := loadSub("child", "child", t1, nil)
			// Workers are forked into the cgroup (CLONE_INTO_CGROUP), so
			// they belong to the child. Sleep/wake workers pass through
			// enqueue and dispatch at every wakeup; a CPU hog alone on a
			// CPU can keep running as prev without being dispatched.
			inside := start(t1, proto.WorkSleep, 2, longWork)
			outside := start(Cgroup{}, proto.WorkSleep, 2, longWork)
			ownedBy(inside, "child")
			ownedBy(outside, "parent")
			keepsRunning(inside)
			keepsRunning(outside)

			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t1.ID), WithField("ret", 1)))
			Eventually(guest.Trace, settle).Should(HaveTraced("child", "dispatch", WithField("moved", Not(Equal("0")))))
			Expect(child.Counter("nr_moved")()).To(BeNumerically(">", 0), "the child ran none of its tasks")
			Expect(parent.Counter("child_true[0]")()).To(BeNumerically(">", 0), "no sub-dispatch of the child returned true")
			// Every dispatch of the child was a sub-dispatch by the parent:
			// the kernel never calls a child's ops.dispatch on its own.
			Expect(child.Counter("nr_dispatch")()).To(BeNumerically("<=", must(parent.Counter("nr_sub_true"))+must(parent.Counter("nr_sub_false"))),
				"the child's ops.dispatch ran more often than its parent sub-dispatched it")
			stillRunning(child)
			stillRunning(parent)
		})

		It("returns true from scx_bpf_sub_dispatch only when the CPU has something to run after the call, and whenever the call moved a task there", func() {
			t2 := newCgroup("t2")
			loadSub("child", "child", t1, nil)
			loadSub("child", "child2", t2, nil)
			for _, cg := range []Cgroup{{}, t1, t2} {
				start(cg, proto.WorkSleep, 2, longWork)
			}
			// Each call is checked in the parent against what happened
			// during it (fixtures/README.md: sub-dispatch accounting).
			Eventually(parent.Counter("nr_ret_checked"), workWait).Should(BeNumerically(">=", 2000), "sub-dispatch calls checked")
			c, err := parent.Counters()
			Expect(err).NotTo(HaveOccurred())
			AddReportEntry("return values checked", fmt.Sprintf("checked %d, true after a move %d, false with nothing to run %d, true with nothing to run %d, false after a move %d",
				c["nr_ret_checked"], c["nr_ret_true_moved"], c["nr_ret_false_idle"], c["nr_ret_true_unexpected"], c["nr_ret_false_unexpected"]))
			Expect(parent.Counter("nr_ret_true_unexpected")()).To(BeZero(), "true although the call gave the CPU nothing to run")
			Expect(parent.Counter("nr_ret_false_unexpected")()).To(BeZero(), "false although the call moved a task to the local DSQ")
			Expect(parent.Counter("nr_ret_true_moved")()).To(BeNumerically(">", 0), "no call that moved a task returned true")
			Expect(parent.Counter("nr_ret_false_idle")()).To(BeNumerically(">", 0), "no call that moved nothing returned false")
			Expect(guest.Trace()).NotTo(HaveTraced("parent", "ret_mismatch"))
			stillRunning(parent)
		})

		It("hands the child's ops.dispatch its own task as prev, never another scheduler's", func() {
			child := loadSub("child", "child", t1, nil)
			hog := start(t1, proto.WorkCPU, 1, longWork)
			start(Cgroup{}, proto.WorkSleep, 2, longWork)
			Eventually(child.Counter("nr_prev"), workWait).Should(BeNumerically(">", 0), "the child's dispatch never got its running task as prev")
			c, err := child.Counters()
			Expect(err).NotTo(HaveOccurred())
			var tgids []int
			for i := range 8 {
				if t := c[fmt.Sprintf("prev_tgid[%d]", i)]; t != 0 {
					tgids = append(tgids, int(t))
				}
			}
			Expect(tgids).To(HaveEach(BeElementOf(hog.PIDs)), "prev tasks the child got that are not its own")
			stillRunning(child)
		})

		It("gives two children side by side both progress", func() {
			t2 := newCgroup("t2")
			a := loadSub("child", "child_a", t1, nil)
			b := loadSub("child", "child_b", t2, nil)
			w1 := start(t1, proto.WorkSleep, 2, workTime)
			w2 := start(t2, proto.WorkSleep, 2, workTime)
			finish(w1)
			finish(w2)
			Expect(a.Counter("nr_moved")()).To(BeNumerically(">", 0))
			Expect(b.Counter("nr_moved")()).To(BeNumerically(">", 0))
			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t1.ID), WithField("ret", 1)))
			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", t2.ID), WithField("ret", 1)))
		})

		It("hands the tasks back to the parent when its link closes", func() {
			child := loadSub("child", "child", t1, nil)
			w := start(t1, proto.WorkSleep, 2, longWork)
			ownedBy(w, "child")
			Eventually(child.Counter("nr_moved"), settle).Should(BeNumerically(">", 0))
			Expect(child.Detach()).To(Succeed())

			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_detach", WithField("cgid", t1.ID)))
			exitsWith(child, "SCX_EXIT_UNREG")
			Eventually(func() error {
				_, err := guest.ReadFile(schedDir(t1.ID) + "/ops")
				return err
			}, settle).Should(HaveOccurred(), "the child's sysfs entry is still there")
			ownedBy(w, "parent")
			keepsRunning(w)
			stillRunning(parent)
		})
	})

	Context("when a child's dispatch never gives the CPU anything", func() {
		// The child puts its task back into its own queue on every call:
		// the kernel's dispatch loop must give up after SCX_DSP_MAX_LOOPS
		// (32) rounds per sub-dispatch, and the CPU go on with the rest.
		It("breaks out of the child's dispatch loop and the CPU goes on, until the child stalls", func() {
			const timeout = 3 * time.Second
			const maxLoops = 32
			parent := loadRoot("parent", nil)
			t1 := newCgroup("t1")
			child := loadWith(proto.LoadScheduler{Fixture: "child", Name: "spinner", Cgroup: t1.Path,
				TimeoutMs: uint32(timeout / time.Millisecond), Knobs: map[string]uint64{"requeue": 1}})
			start(t1, proto.WorkSleep, 1, longWork)
			outside := start(Cgroup{}, proto.WorkSleep, 1, longWork)
			Eventually(child.Counter("nr_requeue"), settle).Should(BeNumerically(">", 100))
			keepsRunning(outside)
			calls := must(parent.Counter("child_true[0]")) + must(parent.Counter("child_false[0]"))
			rounds := must(child.Counter("nr_dispatch"))
			Expect(calls).To(BeNumerically(">", 0))
			Expect(float64(rounds)/float64(calls)).To(And(BeNumerically(">", 1.5), BeNumerically("<=", maxLoops)),
				"the child's ops.dispatch ran %d times in %d sub-dispatches", rounds, calls)
			exitsWithin(2*timeout+settle, child, "SCX_EXIT_ERROR_STALL", ContainSubstring("failed to run for"))
			stillRunning(parent)
		})
	})

	Context("when the parent's child table is full", func() {
		It("rejects one child more with parent rejected (-28) and keeps the others", func() {
			parent := loadRoot("parent", map[string]uint64{"capacity": 1})
			t1, t2 := newCgroup("t1"), newCgroup("t2")
			first := loadSub("child", "first", t1, nil)
			extra, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "extra", Cgroup: t2.Path})
			Expect(err).NotTo(HaveOccurred(), "link create succeeds; the rejection arrives as exit info")
			exitsWith(extra, "SCX_EXIT_ERROR", "parent rejected (-28)")
			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_attach", WithField("cgid", t2.ID), WithField("ret", -28)))
			w := start(t1, proto.WorkSleep, 1, workTime)
			finish(w)
			stillRunning(first)
			stillRunning(parent)
		})
	})

	Context("when the target cgroup id is unknown", func() {
		It("returns false and nothing exits", func() {
			const unknown = 999999
			parent := loadRoot("parent", map[string]uint64{"extra_dispatch_cgid": unknown})
			finish(start(Cgroup{}, proto.WorkSleep, 1, workTime))
			Eventually(guest.Trace, settle).Should(HaveTraced("parent", "sub_dispatch", WithField("cgid", unknown), WithField("ret", 0)))
			Expect(guest.Trace()).NotTo(HaveTraced("parent", "sub_dispatch", WithField("cgid", unknown), WithField("ret", 1)))
			Expect(parent.Counter("nr_extra_false")()).To(BeNumerically(">", 0))
			stillRunning(parent)
		})
	})

	Context("when the kfunc is called from ops.enqueue", func() {
		It("fails verification with a clear verifier log", func() {
			_, err := guest.Load(proto.LoadScheduler{Fixture: "badenqueue", Name: "badenqueue"})
			Expect(err).To(MatchError(ContainSubstring("calling kernel function scx_bpf_sub_dispatch is not allowed")))
		})
	})

	Context("when link create fails", func() {
		It("says ENODEV when no root scheduler is loaded", func() {
			t1 := newCgroup("t1")
			_, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "child", Cgroup: t1.Path})
			Expect(err).To(MatchError(ContainSubstring("ENODEV")))
		})

		It("says EBUSY for a second child on the same cgroup", func() {
			loadRoot("parent", nil)
			t1 := newCgroup("t1")
			loadSub("child", "child", t1, nil)
			_, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "again", Cgroup: t1.Path})
			Expect(err).To(MatchError(ContainSubstring("EBUSY")))
		})

		It("says EOPNOTSUPP below a parent without sub_attach", func() {
			loadRoot("parent", nil)
			t1 := newCgroup("t1")
			loadSub("child", "child", t1, nil)
			t2 := newCgroup("t1/t2")
			_, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "grandchild", Cgroup: t2.Path})
			Expect(err).To(MatchError(ContainSubstring("EOPNOTSUPP")))
		})

		It("says ENOENT for an id that is not a cgroup2 cgroup", func() {
			loadRoot("parent", nil)
			_, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "child", CgroupID: 1 << 40})
			Expect(err).To(MatchError(ContainSubstring("ENOENT")))
		})

		It("says EINVAL for a cid-form scheduler without an arena", func() {
			loadRoot("parent", nil)
			t1 := newCgroup("t1")
			_, err := guest.Load(proto.LoadScheduler{Fixture: "noarena", Name: "noarena", Cgroup: t1.Path})
			Expect(err).To(MatchError(ContainSubstring("EINVAL")))
			Eventually(guest.KernelLog, settle).Should(HaveLogged("cid-form scheduler must use a BPF arena map"))
		})

		It("refuses a cpu-form child with sub-sched requires cid-form struct_ops", func() {
			loadRoot("parent", nil)
			t1 := newCgroup("t1")
			child, err := guest.Load(proto.LoadScheduler{Fixture: "cpuform", Name: "cpuform", Cgroup: t1.Path})
			if err != nil {
				Expect(err).To(MatchError(ContainSubstring("sub-sched requires cid-form struct_ops")))
				return
			}
			Eventually(func() (string, error) {
				info, err := child.Exit()
				return info.Msg, err
			}, settle).Should(ContainSubstring("sub-sched requires cid-form struct_ops"))
		})
	})
})

// must returns a value or fails the spec.
func must[T any](f func() (T, error)) T {
	GinkgoHelper()
	v, err := f()
	Expect(err).NotTo(HaveOccurred())
	return v
}
