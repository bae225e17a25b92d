package suites

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

// ownerOf returns a function for Eventually: the ops name of the scheduler
// that owns pid in the kernel's view (task_struct.scx.sched, read with the
// owners task iterator), "" for none, or an error once the task is gone.
func ownerOf(pid int) func() (string, error) {
	return func() (string, error) {
		o, err := guest.Owners(pid)
		if err != nil {
			return "", err
		}
		if len(o) != 1 || o[0].Gone {
			return "", fmt.Errorf("task %d is gone", pid)
		}
		return o[0].Sched, nil
	}
}

// ownedBy expects every task of a workload to be owned by the named
// scheduler and to be in the sched_ext class, in the kernel's view.
func ownedBy(w *Workload, name string) {
	GinkgoHelper()
	for _, pid := range w.PIDs {
		Eventually(ownerOf(pid), settle).Should(Equal(name), "owner of task %d", pid)
	}
	owners, err := guest.Owners(w.PIDs...)
	Expect(err).NotTo(HaveOccurred())
	for _, o := range owners {
		Expect(o.OnExt).To(BeTrue(), "task %d is not in the sched_ext class", o.PID)
	}
}

// runtimeOf returns a function for Eventually: the CPU time the kernel has
// accounted to a task, in nanoseconds: /proc/<pid>/schedstat where the
// kernel has it (CONFIG_SCHED_INFO), else utime + stime of /proc/<pid>/stat
// (clock ticks of 10 ms).
func runtimeOf(pid int) func() (uint64, error) {
	return func() (uint64, error) {
		b, err := guest.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err == nil {
			var ns uint64
			if _, err := fmt.Sscan(b, &ns); err != nil {
				return 0, fmt.Errorf("/proc/%d/schedstat %q: %w", pid, b, err)
			}
			return ns, nil
		}
		b, err = guest.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the parenthesised command: state is field 3, utime
		// and stime are 14 and 15.
		i := strings.LastIndexByte(b, ')')
		f := strings.Fields(b[i+1:])
		if i < 0 || len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat %q: too short", pid, b)
		}
		utime, err1 := strconv.ParseUint(f[11], 10, 64)
		stime, err2 := strconv.ParseUint(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("/proc/%d/stat %q: utime/stime", pid, b)
		}
		return (utime + stime) * uint64(10*time.Millisecond), nil
	}
}

// keepsRunning expects every task of a workload to get CPU time from now on.
func keepsRunning(w *Workload) {
	GinkgoHelper()
	for _, pid := range w.PIDs {
		before := must(runtimeOf(pid))
		Eventually(runtimeOf(pid), settle).Should(BeNumerically(">", before+uint64(10*time.Millisecond)),
			"task %d got no CPU time", pid)
	}
}

// moveTo moves a task into a cgroup through its cgroup.procs file.
func moveTo(pid int, cg Cgroup) {
	GinkgoHelper()
	procs := path.Join(cgroupRoot, "cgroup.procs")
	if cg.Path != "" {
		procs = path.Join(cg.Path, "cgroup.procs")
	}
	Expect(guest.WriteFile(procs, strconv.Itoa(pid))).To(Succeed(), "move task %d to %s", pid, procs)
}

// longWork outlasts any spec: its workers are killed by the reset after it.
const longWork = 5 * time.Minute

var _ = Describe("task ownership", Label("ownership"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	It("gives a task forked inside a sub-scheduler's cgroup to that sub-scheduler", func() {
		loadRoot("root", nil)
		t1 := newCgroup("t1")
		loadSub("child", "child", t1, nil)
		inside := start(t1, proto.WorkSleep, 2, longWork)
		outside := start(Cgroup{}, proto.WorkSleep, 1, longWork)
		ownedBy(inside, "child")
		ownedBy(outside, "root")
		keepsRunning(inside)
		keepsRunning(outside)
	})

	It("takes over the tasks already in the cgroup when a child attaches, and hands them back when it detaches", func() {
		loadRoot("root", nil)
		t1 := newCgroup("t1")
		w := start(t1, proto.WorkSleep, 2, longWork)
		ownedBy(w, "root")

		child := loadSub("child", "child", t1, nil)
		ownedBy(w, "child")
		keepsRunning(w)
		Eventually(child.Counter("nr_moved"), settle).Should(BeNumerically(">", 0), "the child ran none of the tasks it took over")

		Expect(child.Detach()).To(Succeed())
		exitsWith(child, "SCX_EXIT_UNREG")
		ownedBy(w, "root")
		keepsRunning(w)
	})

	Context("when a task moves between cgroups while sub-schedulers are attached", func() {
		// Linux 7.3 re-homes a task that crosses a scheduler boundary
		// (kernel/sched/ext/sub.c scx_rehome_task); 7.2 leaves it with the
		// scheduler that owned it. Both keep it running.
		var t1, t2 Cgroup
		var w *Workload
		var rehomes bool

		BeforeEach(func() {
			rehomes = probe.RequireGeneration(guest.Caps, "7.3") == nil
			loadRoot("root", nil)
			t1, t2 = newCgroup("t1"), newCgroup("t2")
			loadSub("child", "child1", t1, nil)
			loadSub("child", "child2", t2, nil)
		})

		owner := func(moved, stayed string) string {
			if rehomes {
				return moved
			}
			return stayed
		}

		It("moves a task from the root's cgroup into a child's", func() {
			w = start(Cgroup{}, proto.WorkSleep, 1, longWork)
			ownedBy(w, "root")
			moveTo(w.PIDs[0], t1)
			ownedBy(w, owner("child1", "root"))
			keepsRunning(w)
		})

		// Out of a sub-scheduler's cgroup, a 7.2 kernel leaves the task with
		// a scheduler that no longer owns its cgroup, and tearing the
		// schedulers down trips the kernel's ownership check (Debian 7.2.13:
		// WARNING at kernel/sched/ext/ext.c:6191 in scx_sub_disable): only
		// the re-homing generation is tested.
		It("moves a task from a child's cgroup into its sibling's", func() {
			requireGeneration("7.3")
			w = start(t1, proto.WorkSleep, 1, longWork)
			ownedBy(w, "child1")
			moveTo(w.PIDs[0], t2)
			ownedBy(w, owner("child2", "child1"))
			keepsRunning(w)
		})

		It("moves a task from a child's cgroup back to the root's", func() {
			requireGeneration("7.3")
			w = start(t1, proto.WorkSleep, 1, longWork)
			ownedBy(w, "child1")
			moveTo(w.PIDs[0], Cgroup{})
			ownedBy(w, owner("root", "child1"))
			keepsRunning(w)
		})
	})
})
