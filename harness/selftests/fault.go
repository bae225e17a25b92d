// Package selftests holds scxcheck's checks of itself against a real
// kernel: the fault matrix (label fault: what the harness reports when the
// guest kernel, the agent, QEMU or KVM break) and specs that fail on purpose
// (label selftest) for the failure path of reports, repro bundles and
// bisect. They are not part of a gate on the kernel under test: the harness
// runs them only when a label filter names them.
package selftests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/internal/fakeqemu"
	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/suites"
	"github.com/scxcheck/scxcheck/vm"
)

// The fault matrix: scxcheck's own behaviour when the guest, the agent,
// QEMU or the host break. A spec cannot both break its VM and observe the
// failure report of its own AfterEach, so each spec provokes the fault,
// declares it expected, and asserts on what guest().assess says, which is
// what the AfterEach reports: classification, message and time to verdict.

// Bounds on the time to verdict, under TCG on a busy 2-core machine.
const (
	panicVerdict = 30 * time.Second
	qemuVerdict  = 15 * time.Second
)

// h is the harness the specs run in: the one of package suites, so that one
// binary holds both and a label filter chooses.
var h = suites.Harness()

// guest is the VM of the running spec.
func guest() *harness.Guest { return h.Guest() }

// verdictTook records a fault's time to verdict in the report and the log.
func verdictTook(fault string, d time.Duration) {
	AddReportEntry("time to verdict", fmt.Sprintf("%s: %s", fault, d.Round(time.Millisecond)))
	h.Log("fault %s: verdict in %s", fault, d.Round(time.Millisecond))
}

// expectVerdict checks a verdict's class and kind, and how the failure
// message of a spec that did not expect it would begin.
func expectVerdict(v *vm.Verdict, class outcome.Class, kind, message string) {
	GinkgoHelper()
	Expect(v).NotTo(BeNil(), "no verdict on a broken VM")
	Expect(v.Class).To(Equal(class))
	Expect(v.Kind).To(Equal(kind))
	Expect(harness.FailureMessage(v)).To(HavePrefix(message))
}

// breaksTheVM declares a fault spec: an Ordered container whose first spec,
// it, provokes a failure of class c with body and asserts on the verdict,
// and whose second checks that it got a fresh VM.
func breaksTheVM(when, it string, c outcome.Class, timeout time.Duration, body func(SpecContext), decorators ...any) {
	Context(when, append([]any{Ordered, func() {
		var broken *vm.Machine
		It(it, func(ctx SpecContext) {
			h.ExpectFailure(c)
			broken = guest().Machine
			body(ctx)
		}, SpecTimeout(timeout))
		replacesTheVM(&broken)
	}}, decorators...)...)
}

// replacesTheVM is the spec after a fault spec in an Ordered container: it
// checks that it got a fresh, healthy VM, and that the broken one is gone
// with its temporary files.
func replacesTheVM(broken **vm.Machine) {
	It("gives the next spec a fresh VM", func(ctx SpecContext) {
		Expect(*broken).NotTo(BeNil(), "the fault spec did not run")
		Expect(guest().Machine).NotTo(BeIdenticalTo(*broken))
		Expect(guest().Alive()).To(BeTrue())
		Expect((*broken).Alive()).To(BeFalse(), "the broken VM's QEMU still runs")
		Expect((*broken).Dir()).NotTo(BeAnExistingFile(), "the broken VM's temporary directory is left")
		Expect(syscall.Kill((*broken).PID(), 0)).To(MatchError(syscall.ESRCH), "QEMU process %d is left", (*broken).PID())
		var hello proto.Hello
		Expect(guest().Call(context.Background(), "Hello", proto.Empty{}, &hello)).To(Succeed())
		Expect(CurrentSpecReport().ReportEntries).To(ContainElement(HaveField("Name", "VM rebooted")))
	})
}

var _ = Describe("scxcheck's verdict", Label(harness.FaultLabel), func() {
	breaksTheVM("when the guest kernel panics mid-spec", "reports a kernel panic with the console excerpt within 30 s", outcome.Crash, 2*time.Minute, func(ctx SpecContext) {
		began := time.Now()
		err := guest().WriteString(ctx, "/proc/sysrq-trigger", "c")
		Expect(err).To(MatchError(vm.ErrExited), "the write that crashes the kernel cannot succeed")
		v, _ := h.Assess(ctx)
		took := time.Since(began)
		verdictTook("kernel panic", took)

		expectVerdict(v, outcome.Crash, string(vm.FaultPanic), "kernel kernel panic during the spec: ")
		Expect(v.Line).To(ContainSubstring("Kernel panic - not syncing: sysrq triggered crash"))
		Expect(v.Excerpt).To(ContainSubstring("sysrq: Trigger a crash"))
		Expect(v.Excerpt).To(ContainSubstring("Kernel panic - not syncing"))
		Expect(took).To(BeNumerically("<", panicVerdict))
		Expect(guest().Alive()).To(BeFalse(), "QEMU should exit on a panic (panic=-1, -no-reboot)")
	})

	breaksTheVM("when the agent (PID 1) exits", "reports the agent died, from the kernel's panic: Attempted to kill init", outcome.Agent, 2*time.Minute, func(ctx SpecContext) {
		began := time.Now()
		Expect(guest().Fault(ctx, proto.Fault{Action: proto.FaultExit})).To(Succeed())
		Eventually(guest().Exited(), panicVerdict).Should(BeClosed())
		v, _ := h.Assess(ctx)
		took := time.Since(began)
		verdictTook("agent exited", took)

		expectVerdict(v, outcome.Agent, vm.KindAgentDied, "agent failure during the spec: agent died: ")
		Expect(v.Line).To(ContainSubstring("Attempted to kill init!"))
		// The agent's own "exiting on request" line is not asserted: it
		// shares the serial console with the panic and can arrive split.
		Expect(harness.FailureMessage(v)).To(ContainSubstring("Kernel panic - not syncing: Attempted to kill init!"))
		Expect(took).To(BeNumerically("<", panicVerdict))
	})

	breaksTheVM("when the agent is stopped", "gets a bounded no-answer from each call and reports the agent not answering", outcome.Agent, 3*time.Minute, func(ctx SpecContext) {
		Expect(guest().Fault(ctx, proto.Fault{Action: proto.FaultStop})).To(Succeed())
		time.Sleep(time.Second) // the agent freezes 100 ms after answering
		began := time.Now()

		const callTimeout = 5 * time.Second
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		_, err := guest().Agent.Hello(cctx)
		cancel()
		Expect(err).To(MatchError(vm.ErrNoAnswer))
		Expect(err).To(MatchError(ContainSubstring("agent call Hello: no answer")))
		Expect(time.Since(began)).To(BeNumerically("<", callTimeout+2*time.Second))
		Expect(guest().Alive()).To(BeTrue(), "QEMU should keep running with a stopped agent")

		v, _ := h.Assess(ctx)
		took := time.Since(began)
		verdictTook("agent stopped", took)
		expectVerdict(v, outcome.Agent, vm.KindAgentNoAnswer, "agent failure during the spec: agent not answering: ")
		Expect(v.Line).To(ContainSubstring("agent call AfterSpec: no answer"))
		Expect(took).To(BeNumerically("<", callTimeout+30*time.Second+10*time.Second))
		Expect(guest().ConsoleTail(50)).To(ContainSubstring("scxcheck-agent: freezing on request"))
	}, Label("slow"))

	breaksTheVM("when QEMU is killed from outside", "reports infrastructure, and closing leaves no process or temporary directory", outcome.Infra, 2*time.Minute, func(ctx SpecContext) {
		pid, dir := guest().PID(), guest().Dir()
		Expect(dir).To(BeADirectory())
		began := time.Now()
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		// A call in flight fails at once, naming the exit.
		_, err := guest().Agent.Hello(ctx)
		Expect(err).To(MatchError(vm.ErrExited))
		v, _ := h.Assess(ctx)
		took := time.Since(began)
		verdictTook("QEMU killed", took)

		expectVerdict(v, outcome.Infra, vm.KindQEMUKilled, "infrastructure failure during the spec: QEMU killed: ")
		Expect(v.Line).To(Equal("QEMU was killed by signal killed (not sent by scxcheck)"))
		Expect(took).To(BeNumerically("<", qemuVerdict))

		// What the AfterEach does next.
		guest().Close()
		Expect(dir).NotTo(BeAnExistingFile())
		Expect(syscall.Kill(pid, 0)).To(MatchError(syscall.ESRCH))
		Expect(processesMentioning(dir)).To(BeEmpty())
	})

	Context("when KVM fails with an emulation failure and QEMU stays paused", func() {
		var fake, fakeDir string
		BeforeEach(func(ctx SpecContext) {
			if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
				Skip("the host has no /dev/kvm to probe: " + err.Error())
			} else {
				f.Close()
			}
			fakeDir = GinkgoT().TempDir()
			var err error
			fake, err = fakeqemu.Write(fakeDir, h.Options().QEMU)
			Expect(err).NotTo(HaveOccurred())
		})
		// Every faked KVM boot must be gone once Boot has returned.
		AfterEach(func() {
			for _, pid := range fakeqemu.PIDs(fakeDir) {
				Expect(syscall.Kill(pid, 0)).To(MatchError(syscall.ESRCH), "faked KVM QEMU %d is left running", pid)
			}
		})
		boot := func(ctx context.Context, accel vm.Accel, log func(string, ...any)) (*vm.Machine, error) {
			o := h.Options()
			return vm.Boot(ctx, vm.Config{Kernel: o.Kernel, Initramfs: h.Initramfs(), Accel: accel,
				TCGThreads: o.TCGThreads, QEMU: fake, Log: log})
		}

		It("falls back to TCG in bounded time with --accel auto", func(ctx SpecContext) {
			var mu sync.Mutex
			var notices []string
			var fellBack time.Duration
			began := time.Now()
			m, err := boot(ctx, vm.AccelAuto, func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				notices = append(notices, fmt.Sprintf(format, args...))
				fellBack = time.Since(began)
			})
			Expect(err).NotTo(HaveOccurred())
			defer m.Shutdown(context.Background())
			verdictTook("KVM emulation failure (auto)", fellBack)

			Expect(m.Accel()).To(Equal(vm.AccelTCG))
			mu.Lock()
			defer mu.Unlock()
			Expect(notices).To(ContainElement(MatchRegexp(
				`^KVM probe failed \(KVM does not work: QEMU reported "KVM internal error\. Suberror: 1"\); falling back to TCG$`)))
			Expect(fakeqemu.PIDs(fakeDir)).To(HaveLen(1), "the probe did not use the fake KVM")
			// The probe stops at the error line, long before KVMProbeTimeout.
			Expect(fellBack).To(BeNumerically("<", 5*time.Second))
			_, err = m.Agent().Hello(ctx)
			Expect(err).NotTo(HaveOccurred())
		}, SpecTimeout(3*time.Minute))

		It("fails clearly with --accel kvm", func(ctx SpecContext) {
			began := time.Now()
			m, err := boot(ctx, vm.AccelKVM, nil)
			took := time.Since(began)
			verdictTook("KVM emulation failure (kvm)", took)
			if m != nil {
				m.Close()
			}
			Expect(err).To(MatchError(vm.ErrKVM))
			Expect(err).To(MatchError(`KVM does not work: QEMU reported "KVM internal error. Suberror: 1"`))
			Expect(took).To(BeNumerically("<", 5*time.Second))
			Expect(fakeqemu.PIDs(fakeDir)).To(HaveLen(1))
		}, SpecTimeout(time.Minute))
	})

	Context("when the verifier rejects a fixture", func() {
		It("puts the whole verifier log into the failure report", func(ctx SpecContext) {
			began := time.Now()
			_, err := h.Load(ctx, proto.LoadScheduler{Fixture: "badenqueue", Name: "badenqueue"})
			took := time.Since(began)
			verdictTook("verifier rejection", took)
			Expect(err).To(HaveOccurred())
			// What a spec that expected the load to work would report.
			report := InterceptGomegaFailure(func() { Expect(err).NotTo(HaveOccurred(), "load badenqueue") })
			Expect(report).To(HaveOccurred())
			msg := report.Error()
			Expect(msg).To(ContainSubstring("verifier log:"))
			Expect(msg).To(ContainSubstring("calling kernel function scx_bpf_sub_dispatch is not allowed"))
			// Instruction lines of the rejected program, not just the last one.
			insns := regexp.MustCompile(`(?m)^\s*\d+: \([0-9a-f]{2}\) `).FindAllString(msg, -1)
			Expect(len(insns)).To(BeNumerically(">=", 5), "verifier instruction lines in:\n%s", msg)
			Expect(msg).To(MatchRegexp(`(?m)^\s*\d+: \(85\) call scx_bpf_sub_dispatch#\d+$`))
			// The log's last line: nothing was cut off.
			Expect(msg).To(MatchRegexp(`processed \d+ insns \(limit \d+\)`))
			Expect(took).To(BeNumerically("<", 30*time.Second))
		}, SpecTimeout(time.Minute))
	})

	Context("when a scheduler stalls its tasks", func() {
		It("observes the watchdog's SCX_EXIT_ERROR_STALL within the timeout and keeps the VM", func(ctx SpecContext) {
			const timeout = 2 * time.Second
			const settle = 10 * time.Second
			root, err := h.Load(ctx, proto.LoadScheduler{Fixture: "parent", Name: "root"})
			Expect(err).NotTo(HaveOccurred())
			t1, err := guest().NewCgroup(ctx, "t1")
			Expect(err).NotTo(HaveOccurred())
			stalled, err := h.Load(ctx, proto.LoadScheduler{Fixture: "child", Name: "stalled", Cgroup: t1.Path,
				TimeoutMs: uint32(timeout / time.Millisecond), Knobs: map[string]uint64{"no_dispatch": 1}})
			Expect(err).NotTo(HaveOccurred())
			began := time.Now()
			w, err := guest().Start(ctx, proto.Workload{Cgroup: t1.Path, Kind: proto.WorkSleep, Count: 1, Duration: time.Second})
			Expect(err).NotTo(HaveOccurred())
			// The watchdog checks every half timeout; allow for that and TCG.
			Eventually(ctx, stalled.Exit, 2*timeout+settle).Should(ExitWith("SCX_EXIT_ERROR_STALL", ContainSubstring("failed to run for")))
			took := time.Since(began)
			verdictTook("stalled scheduler", took)
			Expect(took).To(BeNumerically("<", 2*timeout+settle))
			Expect(stalled.Counter("nr_dispatch")(ctx)).To(BeNumerically(">", 0), "the child was asked to dispatch and refused")
			Eventually(guest().KernelLog, settle).Should(HaveLogged(`BPF sub-scheduler "stalled" disabled (runnable task stall)`))
			Expect(root.Exit(ctx)).To(HaveField("Kind", BeZero()), "the root exited")
			// Back on the root, the stalled task finishes.
			done, err := w.Wait(ctx, 30*time.Second)
			Expect(err).NotTo(HaveOccurred())
			Expect(done.Done).To(BeTrue(), "the stalled task did not finish on the root: %+v", done)
			v, resetErr := h.Assess(ctx)
			Expect(v).To(BeNil(), "a scheduler exit is not a broken VM")
			Expect(resetErr).NotTo(HaveOccurred())
		}, SpecTimeout(2*time.Minute))
	})
})

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(s string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		if pid := filepath.Base(filepath.Dir(p)); pid != fmt.Sprint(os.Getpid()) {
			found = append(found, pid+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return found
}
