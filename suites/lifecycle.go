package suites

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = describeSubSched("a sub-scheduler's life cycle", "lifecycle", func() {
	Context("when a child attaches", func() {
		It("runs the child's ops.init before the parent's ops.sub_attach, which names the child's cgroup and path", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_attach",
				WithField("cgid", hier.a.ID), WithField("path", hier.a.Rel), WithField("child", "mid"), WithField("ret", 0)))
			Eventually(guest().Trace, settle).Should(HaveTraced("mid", "sub_attach",
				WithField("cgid", hier.b.ID), WithField("path", hier.b.Rel), WithField("child", "leaf"), WithField("ret", 0)))
			Expect(guest().Trace()).NotTo(HaveTraced("root", "sub_attach", WithField("cgid", hier.b.ID)), "the root was asked to attach its grandchild")
			Expect(traceTime("mid", "init", 0)).To(BeNumerically("<=", traceTime("root", "sub_attach", hier.a.ID)))
			Expect(traceTime("leaf", "init", 0)).To(BeNumerically("<=", traceTime("mid", "sub_attach", hier.b.ID)))
		})
	})

	Context("when the parent rejects a child", func() {
		It("never calls the parent's ops.sub_detach for it", func(ctx SpecContext) {
			loadRoot(ctx, "root", map[string]uint64{"capacity": 0})
			t1 := newCgroup(ctx, "t1")
			rejected, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "rejected", Cgroup: t1.Path})
			Expect(err).NotTo(HaveOccurred())
			exitsWith(ctx, rejected, "SCX_EXIT_ERROR", "parent rejected (-28)")
			Eventually(guest().Trace, settle).Should(HaveTraced("rejected", "exit"))
			Expect(guest().Trace()).NotTo(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID)))
			sysfsGone(ctx, schedDir(t1.ID))
		})
	})

	Context("when a child exits", func() {
		// Each way a child can go must remove its sysfs directory and run
		// the parent's ops.sub_detach.
		for _, tc := range []struct {
			how  string
			exit func(ctx context.Context, root, child *Sched, cg Cgroup)
			kind string
		}{
			{"closing its link", func(ctx context.Context, _, child *Sched, _ Cgroup) { Expect(child.Detach(ctx)).To(Succeed()) }, "SCX_EXIT_UNREG"},
			{"removing its cgroup", func(ctx context.Context, _, _ *Sched, cg Cgroup) { removeCgroup(ctx, cg) }, "SCX_EXIT_UNREG_KERN"},
			{"closing its parent's link", func(ctx context.Context, root, _ *Sched, _ Cgroup) { Expect(root.Detach(ctx)).To(Succeed()) }, "SCX_EXIT_PARENT"},
		} {
			It(fmt.Sprintf("removes its sysfs directory and runs sub_detach after %s", tc.how), func(ctx SpecContext) {
				root, t1, child := loadRootAndChild(ctx, "child", nil)
				tc.exit(ctx, root, child, t1)
				exitsWith(ctx, child, tc.kind)
				Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID), WithField("path", t1.Rel)))
				sysfsGone(ctx, schedDir(t1.ID))
			})
		}

		It("exits with SCX_EXIT_UNREG_BPF when it calls scx_bpf_exit, and its parent keeps running", func(ctx SpecContext) {
			root, t1, child := loadRootAndChild(ctx, "quitter", map[string]uint64{"exit_after": 5})
			start(ctx, t1, proto.WorkSleep, 1, longWork)
			exitsWith(ctx, child, "SCX_EXIT_UNREG_BPF", "scxcheck: exit after 5 dispatches")
			Expect(child.Exit(ctx)).To(And(HaveField("Reason", "unregistered from BPF"), HaveField("ExitCode", BeNumerically("==", 5))))
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "quitter" disabled (unregistered from BPF)`))
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID)))
			sysfsGone(ctx, schedDir(t1.ID))
			stillRunning(ctx, root)
		})

		It("exits with SCX_EXIT_ERROR_BPF when it calls scx_bpf_error, and its parent keeps running", func(ctx SpecContext) {
			root, t1, child := loadRootAndChild(ctx, "failer", map[string]uint64{"error_after": 5})
			start(ctx, t1, proto.WorkSleep, 1, longWork)
			exitsWith(ctx, child, "SCX_EXIT_ERROR_BPF", "scxcheck: error after 5 dispatches")
			Expect(child.Exit(ctx)).To(HaveField("Reason", "scx_bpf_error"))
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "failer" disabled (scx_bpf_error)`))
			Eventually(guest().KernelLog, settle).Should(HaveLogged("failer: scxcheck: error after 5 dispatches"))
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID)))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("failer", fmt.Sprintf("sub1-%d %s", t1.ID, t1.Rel)))
			sysfsGone(ctx, schedDir(t1.ID))
			stillRunning(ctx, root)
		})
	})

	Context("when a middle-level scheduler fails while its parent lives", func() {
		It("takes its children down with SCX_EXIT_PARENT and gives their tasks to the grandparent", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)
			w := start(ctx, hier.b, proto.WorkSleep, 2, longWork)
			ownedBy(ctx, w, "leaf")

			_, _ = hier.mid.Command(ctx, proto.CmdError, 0, 0, nil, false) // mid is gone before it can answer
			exitsWith(ctx, hier.mid, "SCX_EXIT_ERROR_BPF", HavePrefix("scxcheck: error on command after "))
			exitsWith(ctx, hier.leaf, "SCX_EXIT_PARENT")
			Expect(hier.leaf.Exit(ctx)).To(HaveField("Reason", "parent exiting"))
			detachedFrom(ctx, hier.root, hier.a)
			sysfsGone(ctx, schedDir(hier.a.ID, hier.b.ID))
			sysfsGone(ctx, schedDir(hier.a.ID))
			ownedBy(ctx, w, "root")
			keepsRunning(ctx, w)
			stillRunning(ctx, hier.root)
		})
	})

	Context("when a child detaches", func() {
		It("lets a new child attach to the same cgroup and run its tasks", func(ctx SpecContext) {
			root, t1, first := loadRootAndChild(ctx, "first", nil)
			Expect(first.Detach(ctx)).To(Succeed())
			exitsWith(ctx, first, "SCX_EXIT_UNREG")
			sysfsGone(ctx, schedDir(t1.ID))

			second := loadSub(ctx, "child", "second", t1, nil)
			Expect(guest().ReadString(ctx, schedDir(t1.ID)+"/ops")).To(Equal("second\n"))
			w := start(ctx, t1, proto.WorkSleep, 1, longWork)
			ownedBy(ctx, w, "second")
			Eventually(ctx, second.Counter("nr_moved"), settle).Should(BeNumerically(">", 0), "the second child ran none of its tasks")
			stillRunning(ctx, second)
			stillRunning(ctx, root)
		})
	})

	Context("when a child attaches and detaches with tasks in its cgroup", func() {
		// The kernel bypasses a sub-scheduler while it attaches and while it
		// detaches, and not its parent ("$parent is not bypassed"): the
		// sysfs events counters say so.
		It("bypasses the child, not its parent, as the events counters show", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", nil)
			t1 := newCgroup(ctx, "t1")
			w := start(ctx, t1, proto.WorkSleep, 2, longWork)
			before, err := eventsOf(ctx, schedDir())
			Expect(err).NotTo(HaveOccurred())

			child := loadSub(ctx, "child", "child", t1, nil)
			childEvents := func(ctx context.Context) (map[string]uint64, error) { return eventsOf(ctx, schedDir(t1.ID)) }
			Eventually(ctx, childEvents, settle).Should(And(
				HaveKeyWithValue("SCX_EV_BYPASS_ACTIVATE", BeNumerically(">=", 1)),
				HaveKeyWithValue("SCX_EV_BYPASS_DURATION", BeNumerically(">", 0))),
				"the attaching child was not bypassed, or its bypass did not end")
			keepsRunning(ctx, w)

			Expect(child.Detach(ctx)).To(Succeed())
			exitsWith(ctx, child, "SCX_EXIT_UNREG")
			after, err := eventsOf(ctx, schedDir())
			Expect(err).NotTo(HaveOccurred())
			Expect(after["SCX_EV_BYPASS_ACTIVATE"]).To(Equal(before["SCX_EV_BYPASS_ACTIVATE"]),
				"the root was bypassed while its child attached or detached")
			keepsRunning(ctx, w)
			stillRunning(ctx, root)
		})
	})

	Context("when sysrq-D asks for a dump", func() {
		It("dumps every scheduler of the hierarchy, named by level, cgroup id and path", func(ctx SpecContext) {
			hier := loadThreeLevels(ctx, nil)
			Expect(guest().WriteString(ctx, "/proc/sysrq-trigger", "D")).To(Succeed())
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("root", "root"))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("mid", fmt.Sprintf("sub1-%d %s", hier.a.ID, hier.a.Rel)))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("leaf", fmt.Sprintf("sub2-%d %s", hier.b.ID, hier.b.Rel)))
			for _, s := range []*Sched{hier.root, hier.mid, hier.leaf} {
				stillRunning(ctx, s)
			}
		})
	})

	Context("when a parent disables while a child enables", func() {
		// The race of the upstream sub_sched_race selftest: the parent's
		// link closes while a verified child's link is being created, many
		// times over.
		It("ends every round with both gone, the child refused or taken down, and sched_ext disabled", func(ctx SpecContext) {
			const rounds = 10
			outcomes := map[string]int{}
			for i := range rounds {
				By(fmt.Sprintf("round %d", i+1))
				root := loadRoot(ctx, fmt.Sprintf("root%d", i), nil)
				cg := newCgroup(ctx, fmt.Sprintf("race%d", i))
				child, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: fmt.Sprintf("racer%d", i), Cgroup: cg.Path, NoAttach: true})
				Expect(err).NotTo(HaveOccurred())
				var attachErr, detachErr error
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); attachErr = child.Attach(ctx) }()
				go func() { defer wg.Done(); detachErr = root.Detach(ctx) }()
				wg.Wait()
				Expect(detachErr).NotTo(HaveOccurred())
				exitsWith(ctx, root, "SCX_EXIT_UNREG")
				switch {
				case attachErr != nil:
					// Refused at link create: the root was gone.
					Expect(attachErr).To(MatchError(unix.ENODEV), "round %d", i+1)
					outcomes["refused (ENODEV)"]++
				default:
					classed(outcome.Exit).Eventually(ctx, child.Exit, settle).Should(Or(
						ExitWith("SCX_EXIT_PARENT"),
						ExitWith("SCX_EXIT_ERROR", Or(Equal("parent disabled (-2)"), Equal("parent bypassing (-16)")))),
						"round %d: exit of the racing child", i+1)
					info := must(ctx, child.Exit)
					outcomes[info.KindName+" "+info.Msg]++
				}
				Eventually(ctx, readFn("/sys/kernel/sched_ext/state"), settle).Should(Equal("disabled\n"), "round %d", i+1)
				sysfsGone(ctx, schedDir(cg.ID))
				Expect(child.Close(ctx)).To(Succeed())
				Expect(root.Close(ctx)).To(Succeed())
				Expect(guest().RemoveCgroup(ctx, cg)).To(Succeed())
			}
			AddReportEntry("race outcomes", fmt.Sprint(outcomes))
			onFairClass(ctx)
		})
	})
})
