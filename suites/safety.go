package suites

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
	"github.com/scxcheck/scxcheck/vm"
)

// distantMsg is the kernel's message for a sub-dispatch of a non-child.
func distantMsg(id uint64) string {
	return fmt.Sprintf("trying to dispatch a distant sub-sched on cgroup %d", id)
}

// exitsWith waits for a scheduler's exit and checks it.
func exitsWith(s *Sched, kind string, msg ...any) {
	GinkgoHelper()
	classed(outcome.Exit).Eventually(s.Exit, settle).Should(ExitWith(kind, msg...), "exit of %s", s.Name)
}

// exitsWithin is exitsWith with a longer bound, for watchdog exits.
func exitsWithin(d time.Duration, s *Sched, kind string, msg ...any) {
	GinkgoHelper()
	classed(outcome.Exit).Eventually(s.Exit, d).Should(ExitWith(kind, msg...), "exit of %s", s.Name)
}

// onFairClass checks that, with sched_ext gone, a workload still completes.
func onFairClass() {
	GinkgoHelper()
	Eventually(func() (string, error) { return guest.ReadFile("/sys/kernel/sched_ext/state") }, settle).Should(Equal("disabled\n"))
	finish(start(Cgroup{}, proto.WorkSleep, 2, workTime/2))
}

// hierarchy is root → mid on /a → leaf on /a/b, with workloads in each.
type hierarchy struct {
	root, mid, leaf *Sched
	a, b            Cgroup
	work            []*Workload
}

// buildHierarchy creates the cgroups first, so that the root can be told at
// load time (rodata) which id to sub-dispatch besides its children.
func buildHierarchy(rootExtra func(a, b Cgroup) uint64) hierarchy {
	GinkgoHelper()
	var h hierarchy
	h.a = newCgroup("a")
	h.b = newCgroup("a/b")
	knobs := map[string]uint64{}
	if rootExtra != nil {
		knobs["extra_dispatch_cgid"] = rootExtra(h.a, h.b)
	}
	h.root = loadRoot("root", knobs)
	h.mid = loadSub("parent", "mid", h.a, nil)
	h.leaf = loadSub("child", "leaf", h.b, nil)
	for _, cg := range []Cgroup{{}, h.a, h.b} {
		h.work = append(h.work, start(cg, proto.WorkSleep, 1, 2*workTime))
	}
	return h
}

var _ = Describe("scx_bpf_sub_dispatch of a sub-scheduler that is not a direct child", Label("distant"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	Context("when the root dispatches its grandchild", func() {
		It("exits the caller with SCX_EXIT_ERROR and takes its descendants down with SCX_EXIT_PARENT", func() {
			h := buildHierarchy(func(_, b Cgroup) uint64 { return b.ID })

			exitsWith(h.root, "SCX_EXIT_ERROR", distantMsg(h.b.ID))
			// The wrong call really happened: the root traced it.
			Eventually(guest.Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", h.b.ID), WithField("slot", -1)))
			Eventually(guest.KernelLog, settle).Should(HaveLogged(`BPF scheduler "root" disabled (runtime error)`))
			Eventually(guest.KernelLog, settle).Should(HaveLogged("root: " + distantMsg(h.b.ID)))
			exitsWith(h.mid, "SCX_EXIT_PARENT")
			exitsWith(h.leaf, "SCX_EXIT_PARENT")
			Expect(h.mid.Exit()).To(HaveField("Reason", "parent exiting"))
			Eventually(guest.Dump, settle).Should(HaveDumpHeader("root", "root"))

			for _, w := range h.work {
				finish(w)
			}
			onFairClass()
			Expect(guest.RemoveCgroup(h.b)).To(Succeed())
			Expect(guest.RemoveCgroup(h.a)).To(Succeed())
		})
	})

	Context("when a sub-scheduler dispatches its sibling", func() {
		It("exits the caller, not the sibling or the root", func() {
			s1, s2 := newCgroup("s1"), newCgroup("s2")
			root := loadRoot("root", nil)
			caller := loadSub("parent", "caller", s1, map[string]uint64{"extra_dispatch_cgid": s2.ID})
			sibling := loadSub("child", "sibling", s2, nil)
			w1, w2 := start(s1, proto.WorkSleep, 1, workTime), start(s2, proto.WorkSleep, 1, workTime)

			exitsWith(caller, "SCX_EXIT_ERROR", distantMsg(s2.ID))
			Eventually(guest.Trace, settle).Should(HaveTraced("caller", "sub_dispatch", WithField("cgid", s2.ID), WithField("slot", -1)))
			Eventually(guest.KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "caller" disabled (runtime error)`))
			Eventually(guest.Dump, settle).Should(HaveDumpHeader("caller", fmt.Sprintf("sub1-%d %s", s1.ID, s1.Rel)))
			finish(w1)
			finish(w2)
			stillRunning(root)
			stillRunning(sibling)
		})
	})

	Context("when a sub-scheduler dispatches its own cgroup", func() {
		It("exits the caller with SCX_EXIT_ERROR", func() {
			a := newCgroup("a")
			root := loadRoot("root", nil)
			self := loadSub("parent", "self", a, map[string]uint64{"extra_dispatch_cgid": a.ID})
			w := start(a, proto.WorkSleep, 1, workTime)

			exitsWith(self, "SCX_EXIT_ERROR", distantMsg(a.ID))
			Eventually(guest.Trace, settle).Should(HaveTraced("self", "sub_dispatch", WithField("cgid", a.ID), WithField("slot", -1)))
			finish(w)
			stillRunning(root)
		})
	})

	Context("when the root dispatches only its direct children", func() {
		// The honesty check: the same hierarchy without the wrong dispatch
		// must not satisfy the matchers the specs above rely on.
		It("does not match the distant-dispatch exit", func() {
			h := buildHierarchy(nil)
			for _, w := range h.work {
				finish(w)
			}
			Eventually(guest.Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", h.a.ID), WithField("ret", 1)))
			for _, s := range []*Sched{h.root, h.mid, h.leaf} {
				stillRunning(s)
			}
			Expect(guest.KernelLog()).NotTo(HaveLogged("distant sub-sched"))
			Expect(guest.Dump()).NotTo(HaveDumpHeader("root", "root"))
		})
	})
})

var _ = Describe("sub-scheduler nesting", Label("nesting"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	It("refuses a fourth level below the root with max nesting depth and keeps the others", func() {
		l1, l2, l3, l4 := newCgroup("l1"), newCgroup("l1/l2"), newCgroup("l1/l2/l3"), newCgroup("l1/l2/l3/l4")
		root := loadRoot("root", nil)
		levels := []*Sched{root,
			loadSub("parent", "level1", l1, nil),
			loadSub("parent", "level2", l2, nil),
			loadSub("parent", "level3", l3, nil),
		}
		fourth, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "level4", Cgroup: l4.Path})
		if err != nil {
			Expect(err).To(MatchError(ContainSubstring("max nesting depth")))
		} else {
			Eventually(func() (string, error) {
				info, err := fourth.Exit()
				return info.Msg, err
			}, settle).Should(ContainSubstring("max nesting depth"))
		}
		finish(start(l3, proto.WorkSleep, 1, workTime))
		for _, s := range levels {
			stillRunning(s)
		}
	})
})

var _ = Describe("the dispatch recursion guard", Label("recursion"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	Context("when every dispatch program has a private stack", func() {
		// recursion_misses stays 0 without any guard too, so the spec proves
		// the guard was armed: at the end it lets the root re-enter its own
		// dispatch (test-only kernel patch) and sees the same programs count
		// misses and the root exit.
		It("sees no recursion in 10,000 sub-dispatches, with the recursion guard armed", func() {
			requireKernel(probe.RecursionPatch)
			t1, t2 := newCgroup("t1"), newCgroup("t2")
			root := loadRoot("root", map[string]uint64{"extra_dispatch_cgid": 1})
			c1 := loadSub("child", "child1", t1, nil)
			c2 := loadSub("child", "child2", t2, nil)
			for _, cg := range []Cgroup{{}, t1, t2} {
				start(cg, proto.WorkSleep, 2, longWork)
			}
			Eventually(func() (uint64, error) {
				c, err := root.Counters()
				return c["nr_sub_true"] + c["nr_sub_false"], err
			}, workWait).Should(BeNumerically(">=", 10000), "sub-dispatches of the root")
			for _, s := range []*Sched{root, c1, c2} {
				stats, err := s.ProgStats()
				Expect(err).NotTo(HaveOccurred())
				Expect(stats).NotTo(BeEmpty(), "%s has no dispatch program", s.Name)
				for _, p := range stats {
					Expect(p.RecursionMisses).To(BeZero(), "%s program %s", s.Name, p.Name)
				}
				stillRunning(s)
			}
			// Both CPUs took part.
			cpus := map[int]bool{}
			for _, ev := range guest.Trace() {
				if ev.Event == "sub_dispatch" {
					cpus[ev.CPU] = true
				}
			}
			Expect(len(cpus)).To(Equal(guest.Hello.CPUs), "CPUs that sub-dispatched: %v", cpus)

			By("re-entering the root's dispatch: the guard that kept recursion_misses at 0 fires")
			Expect(guest.WriteFile(recursionParam, "Y")).To(Succeed())
			DeferCleanup(func() { _ = guest.WriteFile(recursionParam, "N") })
			exitsWith(root, "SCX_EXIT_ERROR", "dispatch recursion detected")
			Expect(totalRecursionMisses(root)).To(BeNumerically(">", 0))
		})
	})

	Context("when the root sub-dispatches its own cgroup on a stock kernel", func() {
		// The honesty check for the recursion specs: without the test patch
		// the kernel refuses the self-dispatch silently, so the matchers of
		// the patched-kernel spec must not match.
		It("returns false and does not match the recursion exit", func() {
			root := loadRoot("root", map[string]uint64{"extra_dispatch_cgid": 1})
			finish(start(Cgroup{}, proto.WorkSleep, 2, workTime))
			if enabled, _ := guest.ReadFile(recursionParam); strings.TrimSpace(enabled) == "Y" {
				Skip("the test-only self-dispatch parameter is on in this kernel")
			}
			Eventually(guest.Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", 1), WithField("ret", 0)))
			stillRunning(root)
			Expect(guest.KernelLog()).NotTo(HaveLogged("dispatch recursion detected"))
			Expect(totalRecursionMisses(root)).To(BeZero())
		})
	})

	Context("when the root re-enters its own dispatch program (test-only kernel patch)", func() {
		BeforeEach(func() { requireKernel(probe.RecursionPatch) })

		It("exits the root with SCX_EXIT_ERROR: dispatch recursion detected", func() {
			root := loadRoot("root", map[string]uint64{"extra_dispatch_cgid": 1})
			Expect(guest.WriteFile(recursionParam, "Y")).To(Succeed())
			DeferCleanup(func() { _ = guest.WriteFile(recursionParam, "N") })
			w := start(Cgroup{}, proto.WorkSleep, 2, workTime)

			exitsWith(root, "SCX_EXIT_ERROR", "dispatch recursion detected")
			Eventually(guest.KernelLog, settle).Should(HaveLogged(`BPF scheduler "root" disabled (runtime error)`))
			Eventually(guest.KernelLog, settle).Should(HaveLogged("root: dispatch recursion detected"))
			Expect(totalRecursionMisses(root)).To(BeNumerically(">", 0))
			Eventually(guest.Dump, settle).Should(HaveDumpHeader("root", "root"))
			finish(w)
			onFairClass()
		})

		It("overflows the kernel stack when the dispatch program has no private stack", func() {
			expectKernelFault()
			_, err := guest.Load(proto.LoadScheduler{Fixture: "parent", Name: "root", Knobs: map[string]uint64{"extra_dispatch_cgid": 1, "small_stack": 1}})
			Expect(err).NotTo(HaveOccurred())
			_ = guest.WriteFile(recursionParam, "Y")             // the kernel may go down before it answers
			_, _ = guest.Start("", proto.WorkSleep, 2, workTime) // may fail as the kernel goes down

			// scxcheck must report this as a kernel panic with the console
			// excerpt: not a hang, not a pass.
			Eventually(guest.Exited(), 60*time.Second).Should(BeClosed(), "the kernel did not go down")
			kinds := map[vm.FaultKind]bool{}
			for _, f := range guest.Faults()[guest.specFaults:] {
				kinds[f.Kind] = true
			}
			Expect(kinds).To(HaveKey(vm.FaultPanic))
			Expect(guest.ConsoleTail(400)).To(ContainSubstring("stack guard page was hit"))
		})
	})
})

// recursionParam is the switch of scxcheck's test-only kernel patch.
const recursionParam = "/sys/module/sched_ext/parameters/test_self_sub_dispatch"

func totalRecursionMisses(s *Sched) uint64 {
	GinkgoHelper()
	stats, err := s.ProgStats()
	Expect(err).NotTo(HaveOccurred())
	var n uint64
	for _, p := range stats {
		n += p.RecursionMisses
	}
	return n
}

var _ = Describe("sub-scheduler teardown", Label("teardown"), func() {
	BeforeEach(func() { requireKernel(probe.SubSchedItems...) })

	It("exits a child with SCX_EXIT_UNREG_KERN when its cgroup is removed", func() {
		root := loadRoot("root", nil)
		t1 := newCgroup("t1")
		child := loadSub("child", "child", t1, nil)
		finish(start(t1, proto.WorkSleep, 1, workTime/2))
		Expect(guest.RemoveCgroup(t1)).To(Succeed())

		exitsWith(child, "SCX_EXIT_UNREG_KERN", fmt.Sprintf("cgroup %d going offline", t1.ID))
		const rsnCgroupOffline = 2 << 32 // SCX_ECODE_RSN_CGROUP_OFFLINE
		Expect(child.Exit()).To(HaveField("ExitCode", BeNumerically("==", rsnCgroupOffline)))
		Eventually(guest.Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", t1.ID)))
		stillRunning(root)
	})

	It("exits the root with SCX_EXIT_SYSRQ and every child with SCX_EXIT_PARENT on sysrq-S", func() {
		t1, t2 := newCgroup("t1"), newCgroup("t2")
		root := loadRoot("root", nil)
		c1 := loadSub("child", "child1", t1, nil)
		c2 := loadSub("child", "child2", t2, nil)
		Expect(guest.WriteFile("/proc/sysrq-trigger", "S")).To(Succeed())
		exitsWith(root, "SCX_EXIT_SYSRQ")
		exitsWith(c1, "SCX_EXIT_PARENT")
		exitsWith(c2, "SCX_EXIT_PARENT")
		onFairClass()
	})

	It("exits a child its parent never sub-dispatches with SCX_EXIT_ERROR_STALL within its timeout", func() {
		const timeout = 3 * time.Second
		root := loadRoot("root", map[string]uint64{"no_sub_dispatch": 1})
		t1 := newCgroup("t1")
		child, err := guest.Load(proto.LoadScheduler{Fixture: "child", Name: "starved", Cgroup: t1.Path, TimeoutMs: uint32(timeout / time.Millisecond)})
		Expect(err).NotTo(HaveOccurred())
		start(t1, proto.WorkSleep, 1, workTime)
		// The watchdog checks every half timeout; allow for that and TCG.
		exitsWithin(2*timeout+settle, child, "SCX_EXIT_ERROR_STALL", MatchRegexp(`\[\d+\] failed to run for \d+\.\d{3}s$`))
		// The kernel's own account of the stall: at least the timeout the
		// child asked for, and not wildly more (a watchdog that ignores the
		// timeout, or fires early, is a bug).
		stalled := stallSeconds(must(child.Exit).Msg)
		Expect(stalled).To(BeNumerically(">=", timeout.Seconds()), "the kernel declared a stall before the child's timeout_ms")
		Expect(stalled).To(BeNumerically("<", 3*timeout.Seconds()), "the kernel declared the stall long after the child's timeout_ms")
		stillRunning(root)
	})

	It("takes the children down with SCX_EXIT_PARENT, sub_detach before exit, when the root's link closes", func() {
		t1, t2 := newCgroup("t1"), newCgroup("t2")
		root := loadRoot("root", nil)
		c1 := loadSub("child", "child1", t1, nil)
		c2 := loadSub("child", "child2", t2, nil)
		Expect(root.Detach()).To(Succeed())
		exitsWith(root, "SCX_EXIT_UNREG")
		exitsWith(c1, "SCX_EXIT_PARENT")
		exitsWith(c2, "SCX_EXIT_PARENT")

		for _, c := range []struct {
			s  *Sched
			cg Cgroup
		}{{c1, t1}, {c2, t2}} {
			Eventually(guest.Trace, settle).Should(HaveTraced(c.s.Name, "exit"))
			Eventually(guest.Trace, settle).Should(HaveTraced("root", "sub_detach", WithField("cgid", c.cg.ID)))
			detach := firstEvent(guest.Trace(), "root", "sub_detach", c.cg.ID)
			exit := firstEvent(guest.Trace(), c.s.Name, "exit", 0)
			Expect(detach.Time).To(BeNumerically("<=", exit.Time), "%s: sub_detach at %.6f, exit at %.6f", c.s.Name, detach.Time, exit.Time)
		}
		onFairClass()
	})
})

// firstEvent returns the earliest matching trace event (cgid 0: any).
func firstEvent(evs []results.TraceEvent, fixture, event string, cgid uint64) results.TraceEvent {
	GinkgoHelper()
	var match []results.TraceEvent
	for _, ev := range evs {
		if ev.Fixture == fixture && ev.Event == event && (cgid == 0 || ev.Field("cgid") == fmt.Sprint(cgid)) {
			match = append(match, ev)
		}
	}
	Expect(match).NotTo(BeEmpty(), "no %s %s event", fixture, event)
	sort.Slice(match, func(i, j int) bool { return match[i].Time < match[j].Time })
	return match[0]
}

// stallSeconds reads the seconds from "<comm>[<pid>] failed to run for S.MMMs".
func stallSeconds(msg string) float64 {
	GinkgoHelper()
	i := strings.LastIndex(msg, " for ")
	Expect(i).To(BeNumerically(">=", 0), "stall message %q", msg)
	secs, err := strconv.ParseFloat(strings.TrimSuffix(msg[i+len(" for "):], "s"), 64)
	Expect(err).NotTo(HaveOccurred(), "stall message %q", msg)
	return secs
}
