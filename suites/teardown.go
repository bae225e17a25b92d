package suites

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = describeSubSched("sub-scheduler teardown", "teardown", func() {
	It("exits a child with SCX_EXIT_UNREG_KERN when its cgroup is removed", func(ctx SpecContext) {
		root, t1, child := loadRootAndChild(ctx, "child", nil)
		finish(ctx, start(ctx, t1, proto.WorkSleep, 1, workTime/2))
		Expect(guest().RemoveCgroup(ctx, t1)).To(Succeed())

		exitsWith(ctx, child, "SCX_EXIT_UNREG_KERN", fmt.Sprintf("cgroup %d going offline", t1.ID))
		const rsnCgroupOffline = 2 << 32 // SCX_ECODE_RSN_CGROUP_OFFLINE
		Expect(child.Exit(ctx)).To(HaveField("ExitCode", BeNumerically("==", rsnCgroupOffline)))
		Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID)))
		stillRunning(ctx, root)
	})

	It("exits the root with SCX_EXIT_SYSRQ and every child with SCX_EXIT_PARENT on sysrq-S", func(ctx SpecContext) {
		fam := loadTwoChildren(ctx, nil)
		Expect(guest().WriteString(ctx, "/proc/sysrq-trigger", "S")).To(Succeed())
		exitsWith(ctx, fam.root, "SCX_EXIT_SYSRQ")
		exitsWith(ctx, fam.c1, "SCX_EXIT_PARENT")
		exitsWith(ctx, fam.c2, "SCX_EXIT_PARENT")
		onFairClass(ctx)
	})

	It("exits a child its parent never sub-dispatches with SCX_EXIT_ERROR_STALL within its timeout", func(ctx SpecContext) {
		const timeout = 3 * time.Second
		root := loadRoot(ctx, "root", map[string]uint64{"no_sub_dispatch": 1})
		t1 := newCgroup(ctx, "t1")
		child, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "starved", Cgroup: t1.Path, TimeoutMs: uint32(timeout / time.Millisecond)})
		Expect(err).NotTo(HaveOccurred())
		start(ctx, t1, proto.WorkSleep, 1, workTime)
		stallsWithin(ctx, child, timeout)
		detachedFrom(ctx, root, t1)
		stillRunning(ctx, root)
	})

	It("takes the children down with SCX_EXIT_PARENT, sub_detach before exit, when the root's link closes", func(ctx SpecContext) {
		fam := loadTwoChildren(ctx, nil)
		Expect(fam.root.Detach(ctx)).To(Succeed())
		exitsWith(ctx, fam.root, "SCX_EXIT_UNREG")
		exitsWith(ctx, fam.c1, "SCX_EXIT_PARENT")
		exitsWith(ctx, fam.c2, "SCX_EXIT_PARENT")

		for _, c := range []struct {
			s  *Sched
			cg Cgroup
		}{{fam.c1, fam.t1}, {fam.c2, fam.t2}} {
			Eventually(guest().Trace, settle).Should(HaveTraced(c.s.Name, "exit"))
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", c.cg.ID)))
			detach := firstEvent(guest().Trace(), "root", "sub_detach", c.cg.ID)
			exit := firstEvent(guest().Trace(), c.s.Name, "exit", 0)
			Expect(detach.Time).To(BeNumerically("<=", exit.Time), "%s: sub_detach at %.6f, exit at %.6f", c.s.Name, detach.Time, exit.Time)
		}
		onFairClass(ctx)
	})
})
