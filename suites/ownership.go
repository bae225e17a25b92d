package suites

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = describeSubSched("task ownership", "ownership", func() {
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
		var rehomes bool

		BeforeEach(func(ctx SpecContext) {
			rehomes = probe.RequireGeneration(guest().Caps(), "7.3") == nil
			fam := loadTwoChildren(ctx, nil)
			t1, t2 = fam.t1, fam.t2
		})

		// movesAndKeepsRunning starts a worker in cgroup from, sees it owned
		// by the scheduler from, moves it into cgroup to and sees it owned
		// by the scheduler to (by from on a kernel that does not re-home)
		// and still running.
		movesAndKeepsRunning := func(ctx SpecContext, from Cgroup, fromSched string, to Cgroup, toSched string) {
			w := start(ctx, from, proto.WorkSleep, 1, longWork)
			ownedBy(ctx, w, fromSched)
			moveTo(ctx, w.PIDs[0], to)
			if !rehomes {
				toSched = fromSched
			}
			ownedBy(ctx, w, toSched)
			keepsRunning(ctx, w)
		}

		It("moves a task from the root's cgroup into a child's", func(ctx SpecContext) {
			movesAndKeepsRunning(ctx, Cgroup{}, "root", t1, "child1")
		})

		// Out of a sub-scheduler's cgroup, a 7.2 kernel leaves the task with
		// a scheduler that no longer owns its cgroup, and tearing the
		// schedulers down trips the kernel's ownership check (Debian 7.2.13:
		// WARNING at kernel/sched/ext/ext.c:6191 in scx_sub_disable): only
		// the re-homing generation is tested.
		It("moves a task from a child's cgroup into its sibling's", func(ctx SpecContext) {
			requireGeneration("7.3")
			movesAndKeepsRunning(ctx, t1, "child1", t2, "child2")
		})

		It("moves a task from a child's cgroup back to the root's", func(ctx SpecContext) {
			requireGeneration("7.3")
			movesAndKeepsRunning(ctx, t1, "child1", Cgroup{}, "root")
		})
	})
})
