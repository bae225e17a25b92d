package suites

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = Describe("task ownership", Label("ownership"), func() {
	BeforeEach(func(ctx SpecContext) { requireKernel(probe.SubSchedItems...) })

	It("gives a task forked inside a sub-scheduler's cgroup to that sub-scheduler", func(ctx SpecContext) {
		loadRoot(ctx, "root", nil)
		t1 := newCgroup(ctx, "t1")
		loadSub(ctx, "child", "child", t1, nil)
		inside := start(ctx, t1, proto.WorkSleep, 2, longWork)
		outside := start(ctx, Cgroup{}, proto.WorkSleep, 1, longWork)
		ownedBy(ctx, inside, "child")
		ownedBy(ctx, outside, "root")
		keepsRunning(ctx, inside)
		keepsRunning(ctx, outside)
	})

	It("takes over the tasks already in the cgroup when a child attaches, and hands them back when it detaches", func(ctx SpecContext) {
		loadRoot(ctx, "root", nil)
		t1 := newCgroup(ctx, "t1")
		w := start(ctx, t1, proto.WorkSleep, 2, longWork)
		ownedBy(ctx, w, "root")

		child := loadSub(ctx, "child", "child", t1, nil)
		ownedBy(ctx, w, "child")
		keepsRunning(ctx, w)
		Eventually(ctx, child.Counter("nr_moved"), settle).Should(BeNumerically(">", 0), "the child ran none of the tasks it took over")

		Expect(child.Detach(ctx)).To(Succeed())
		exitsWith(ctx, child, "SCX_EXIT_UNREG")
		ownedBy(ctx, w, "root")
		keepsRunning(ctx, w)
	})

	Context("when a task moves between cgroups while sub-schedulers are attached", func() {
		// Linux 7.3 re-homes a task that crosses a scheduler boundary
		// (kernel/sched/ext/sub.c scx_rehome_task); 7.2 leaves it with the
		// scheduler that owned it. Both keep it running.
		var t1, t2 Cgroup
		var w *Workload
		var rehomes bool

		BeforeEach(func(ctx SpecContext) {
			rehomes = probe.RequireGeneration(guest().Caps(), "7.3") == nil
			loadRoot(ctx, "root", nil)
			t1, t2 = newCgroup(ctx, "t1"), newCgroup(ctx, "t2")
			loadSub(ctx, "child", "child1", t1, nil)
			loadSub(ctx, "child", "child2", t2, nil)
		})

		owner := func(moved, stayed string) string {
			if rehomes {
				return moved
			}
			return stayed
		}

		It("moves a task from the root's cgroup into a child's", func(ctx SpecContext) {
			w = start(ctx, Cgroup{}, proto.WorkSleep, 1, longWork)
			ownedBy(ctx, w, "root")
			moveTo(ctx, w.PIDs[0], t1)
			ownedBy(ctx, w, owner("child1", "root"))
			keepsRunning(ctx, w)
		})

		// Out of a sub-scheduler's cgroup, a 7.2 kernel leaves the task with
		// a scheduler that no longer owns its cgroup, and tearing the
		// schedulers down trips the kernel's ownership check (Debian 7.2.13:
		// WARNING at kernel/sched/ext/ext.c:6191 in scx_sub_disable): only
		// the re-homing generation is tested.
		It("moves a task from a child's cgroup into its sibling's", func(ctx SpecContext) {
			requireGeneration("7.3")
			w = start(ctx, t1, proto.WorkSleep, 1, longWork)
			ownedBy(ctx, w, "child1")
			moveTo(ctx, w.PIDs[0], t2)
			ownedBy(ctx, w, owner("child2", "child1"))
			keepsRunning(ctx, w)
		})

		It("moves a task from a child's cgroup back to the root's", func(ctx SpecContext) {
			requireGeneration("7.3")
			w = start(ctx, t1, proto.WorkSleep, 1, longWork)
			ownedBy(ctx, w, "child1")
			moveTo(ctx, w.PIDs[0], Cgroup{})
			ownedBy(ctx, w, owner("root", "child1"))
			keepsRunning(ctx, w)
		})
	})
})
