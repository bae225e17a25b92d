package suites

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/vm"
)

var _ = describeSubSched("the dispatch recursion guard", "recursion", func() {
	Context("when every dispatch program has a private stack", func() {
		// recursion_misses stays 0 without any guard too, so the spec proves
		// the guard was armed: at the end it lets the root re-enter its own
		// dispatch (test-only kernel patch) and sees the same programs count
		// misses and the root exit.
		It("sees no recursion in 5,000 sub-dispatches, with the recursion guard armed", func(ctx SpecContext) {
			requireKernel(probe.RecursionPatch)
			fam := loadTwoChildren(ctx, map[string]uint64{"extra_dispatch_cgid": 1})
			for _, cg := range []Cgroup{{}, fam.t1, fam.t2} {
				start(ctx, cg, proto.WorkSleep, 2, longWork)
			}
			Eventually(func() (uint64, error) {
				c, err := fam.root.Counters(ctx)
				return c["nr_sub_true"] + c["nr_sub_false"], err
			}, 2*workWait).Should(BeNumerically(">=", 5000), "sub-dispatches of the root")
			for _, s := range []*Sched{fam.root, fam.c1, fam.c2} {
				stats, err := s.ProgStats(ctx)
				Expect(err).NotTo(HaveOccurred())
				Expect(stats).NotTo(BeEmpty(), "%s has no dispatch program", s.Name)
				for _, p := range stats {
					Expect(p.RecursionMisses).To(BeZero(), "%s program %s", s.Name, p.Name)
				}
				stillRunning(ctx, s)
			}
			// Both CPUs took part.
			cpus := map[int]bool{}
			for _, ev := range guest().Trace() {
				if ev.Event == "sub_dispatch" {
					cpus[ev.CPU] = true
				}
			}
			Expect(len(cpus)).To(Equal(guest().Hello.CPUs), "CPUs that sub-dispatched: %v", cpus)

			By("re-entering the root's dispatch: the guard that kept recursion_misses at 0 fires")
			Expect(guest().WriteString(ctx, recursionParam, "Y")).To(Succeed())
			DeferCleanup(func(ctx SpecContext) { _ = guest().WriteString(ctx, recursionParam, "N") })
			exitsWith(ctx, fam.root, "SCX_EXIT_ERROR", "dispatch recursion detected")
			Expect(totalRecursionMisses(ctx, fam.root)).To(BeNumerically(">", 0))
		})
	})

	Context("when the root sub-dispatches its own cgroup on a stock kernel", func() {
		// The honesty check for the recursion specs: without the test patch
		// the kernel refuses the self-dispatch silently, so the matchers of
		// the patched-kernel spec must not match.
		It("returns false and does not match the recursion exit", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", map[string]uint64{"extra_dispatch_cgid": 1})
			finish(ctx, start(ctx, Cgroup{}, proto.WorkSleep, 2, workTime))
			if enabled, _ := guest().ReadString(ctx, recursionParam); strings.TrimSpace(enabled) == "Y" {
				Skip("the test-only self-dispatch parameter is on in this kernel")
			}
			Eventually(guest().Trace, settle).Should(HaveTraced("root", "sub_dispatch", WithField("cgid", 1), WithField("ret", 0)))
			stillRunning(ctx, root)
			Expect(guest().KernelLog()).NotTo(HaveLogged("dispatch recursion detected"))
			Expect(totalRecursionMisses(ctx, root)).To(BeZero())
		})
	})

	Context("when the root re-enters its own dispatch program (test-only kernel patch)", func() {
		BeforeEach(func(ctx SpecContext) { requireKernel(probe.RecursionPatch) })

		It("exits the root with SCX_EXIT_ERROR: dispatch recursion detected", func(ctx SpecContext) {
			root := loadRoot(ctx, "root", map[string]uint64{"extra_dispatch_cgid": 1})
			Expect(guest().WriteString(ctx, recursionParam, "Y")).To(Succeed())
			DeferCleanup(func(ctx SpecContext) { _ = guest().WriteString(ctx, recursionParam, "N") })
			w := start(ctx, Cgroup{}, proto.WorkSleep, 2, workTime)

			exitsWith(ctx, root, "SCX_EXIT_ERROR", "dispatch recursion detected")
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF scheduler "root" disabled (runtime error)`))
			Eventually(guest().KernelLog, settle).Should(HaveLogged("root: dispatch recursion detected"))
			Expect(totalRecursionMisses(ctx, root)).To(BeNumerically(">", 0))
			Eventually(guest().Dump, settle).Should(HaveDumpHeader("root", "root"))
			finish(ctx, w)
			onFairClass(ctx)
		})

		It("overflows the kernel stack when the dispatch program has no private stack", func(ctx SpecContext) {
			h.ExpectFailure(outcome.Crash)
			_, err := load(ctx, proto.LoadScheduler{Fixture: "parent", Name: "root", Knobs: map[string]uint64{"extra_dispatch_cgid": 1, "small_stack": 1}})
			Expect(err).NotTo(HaveOccurred())
			_ = guest().WriteString(ctx, recursionParam, "Y")                                              // the kernel may go down before it answers
			_, _ = guest().Start(ctx, proto.Workload{Kind: proto.WorkSleep, Count: 2, Duration: workTime}) // may fail as the kernel goes down

			// scxcheck must report this as a kernel panic with the console
			// excerpt: not a hang, not a pass.
			Eventually(guest().Exited(), 60*time.Second).Should(BeClosed(), "the kernel did not go down")
			kinds := map[vm.FaultKind]bool{}
			for _, f := range guest().SpecFaults() {
				kinds[f.Kind] = true
			}
			Expect(kinds).To(HaveKey(vm.FaultPanic))
			// x86 reports the overflow from its double-fault handler: with
			// "BUG: stack guard page was hit" when the fault address is in
			// the guard page it can see, else only as the double fault.
			Expect(guest().ConsoleTail(400)).To(Or(ContainSubstring("stack guard page was hit"), ContainSubstring("PANIC: double fault")))
		})
	})
})

// recursionParam is the switch of scxcheck's test-only kernel patch.
const recursionParam = "/sys/module/sched_ext/parameters/test_self_sub_dispatch"

func totalRecursionMisses(ctx context.Context, s *Sched) uint64 {
	GinkgoHelper()
	stats, err := s.ProgStats(ctx)
	Expect(err).NotTo(HaveOccurred())
	var n uint64
	for _, p := range stats {
		n += p.RecursionMisses
	}
	return n
}
