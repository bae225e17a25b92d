package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
	"github.com/scxcheck/scxcheck/vm"
)

// Guest is the VM the specs of this process run in, and the typed client of
// its agent (proto.Agent: every call takes the spec's context, so that a
// SpecTimeout cancels a call in flight).
type Guest struct {
	*vm.Machine
	proto.Agent
	// Hello is the agent's greeting: kernel release, CPUs, taint, and what
	// the capability probe found (Hello.Caps).
	Hello proto.Hello

	specMark   int // event-log mark at the start of the running spec
	specFaults int // console faults seen before the running spec
	// verdict is what the checks after the running spec know (verdict.go).
	verdict specVerdict
}

// Guest returns the VM of the running spec.
func (h *Harness) Guest() *Guest { return h.guest }

type shared struct {
	Dir       string `json:"dir"`
	Initramfs string `json:"initramfs"`
}

// prepareRun runs once per run, on process 1: it writes the initramfs every
// process boots.
func (h *Harness) prepareRun() []byte {
	if !h.running {
		Fail("harness: Run was not called")
	}
	if h.opts.Boot != nil {
		return []byte("{}") // no VM to build an initramfs for
	}
	if _, err := os.Stat(h.opts.Kernel); err != nil {
		h.infra(fmt.Errorf("kernel image: %w", err))
	}
	dir, err := os.MkdirTemp("", "scxcheck-suite-")
	if err != nil {
		h.infra(err)
	}
	agent, err := vm.AgentBinary(dir)
	if err != nil {
		h.infra(err)
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := vm.WriteInitramfs(initrd, agent); err != nil {
		h.infra(fmt.Errorf("write initramfs: %w", err))
	}
	b, _ := json.Marshal(shared{Dir: dir, Initramfs: initrd})
	return b
}

// bootFirst runs on every process: it boots the process's VM.
func (h *Harness) bootFirst(ctx SpecContext, b []byte) {
	var s shared
	if err := json.Unmarshal(b, &s); err != nil {
		h.infra(err)
	}
	h.initramfs, h.sharedDir = s.Initramfs, s.Dir
	if err := h.boot(ctx, "suite start"); err != nil {
		h.infra(err)
	}
}

// shutdown powers this process's VM off and keeps its whole console and
// event stream with the artifacts.
func (h *Harness) shutdown() {
	if h.guest == nil {
		return
	}
	if err := writeMachineArtifacts(h.opts.Artifacts, h.guest.Machine, fmt.Sprintf("vm-p%d", GinkgoParallelProcess())); err != nil {
		h.Log("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.guest.Shutdown(ctx); err != nil {
		h.Log("%v", err)
	}
	h.guest = nil
}

// cleanUp runs once per run, after every process is done.
func (h *Harness) cleanUp() {
	if h.sharedDir != "" {
		os.RemoveAll(h.sharedDir)
	}
}

// infra records an infrastructure failure and fails the current node, of
// class infra when it is a spec (a replacement VM that does not boot, e.g.
// the "IO-APIC + timer doesn't work" panic of TCG on a loaded host: the spec
// was not run, which is neither a pass nor the kernel's failure).
func (h *Harness) infra(err error) {
	if h.result.Infra == nil {
		h.result.Infra = err
	}
	if CurrentSpecReport().LeafNodeType.Is(types.NodeTypeIt) {
		RecordClass(outcome.Infra)
	}
	Fail(err.Error())
}

// boot boots a fresh VM and greets its agent; why says what prompted it.
func (h *Harness) boot(ctx context.Context, why string) error {
	if h.guest != nil {
		h.guest.Close()
		h.guest = nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*vm.DefaultReadyTimeout)
	defer cancel()
	accel := h.opts.Accel
	if h.result.Accel != "" {
		accel = h.result.Accel // resolved by an earlier boot
	}
	h.Log("booting %s (%s; %s)", filepath.Base(h.opts.Kernel), accel, why)
	boot := func(ctx context.Context, cfg vm.Config) (*vm.Machine, error) { return vm.Boot(ctx, cfg) }
	if h.opts.Boot != nil {
		boot = func(ctx context.Context, _ vm.Config) (*vm.Machine, error) { return h.opts.Boot(ctx) }
	}
	m, err := boot(ctx, vm.Config{
		Kernel:      h.opts.Kernel,
		Initramfs:   h.initramfs,
		Accel:       accel,
		TCGThreads:  h.opts.TCGThreads,
		QEMU:        h.opts.QEMU,
		Log:         h.opts.Log,
		KVMVerdicts: h.opts.KVMVerdicts,
		Cmdline:     h.timelineCmdline(),
	})
	if err != nil {
		return fmt.Errorf("boot %s: %w", h.opts.Kernel, err)
	}
	g := &Guest{Machine: m, Agent: m.Agent()}
	if g.Hello, err = g.Agent.Hello(ctx); err != nil {
		m.Close()
		return err
	}
	if err := h.cov.checkGcov(ctx, g); err != nil {
		m.Close()
		return fmt.Errorf("coverage run on %s: %w", h.opts.Kernel, err)
	}
	h.result.Accel = m.Accel()
	h.result.BootTimes = append(h.result.BootTimes, m.BootTime())
	h.result.Release = g.Hello.Release
	h.result.API = probe.Describe(g.Hello.Caps)
	h.Log("guest up in %s: Linux %s, %d CPUs, sub-scheduler API %s", m.BootTime().Round(time.Millisecond), g.Hello.Release, g.Hello.CPUs, h.result.API)
	h.guest = g
	return nil
}

// beforeEach gives every spec a live VM.
func (h *Harness) beforeEach(ctx SpecContext) {
	if h.guest == nil || !h.guest.Alive() {
		why := "the previous VM exited"
		if h.guest == nil {
			why = "no VM"
		}
		AddReportEntry("VM rebooted", why)
		if err := h.boot(ctx, why); err != nil {
			h.infra(err)
		}
	}
	g := h.guest
	g.specMark = g.Events().Mark()
	g.specFaults = len(g.Faults())
	g.verdict = specVerdict{}
	h.beginSpec()
	h.beginTimeline(ctx)
	h.resetCoverage(ctx)
}

// afterEach ends every spec with the harness's verdict on the VM
// (verdict.go), after keeping what the artifacts need (artifacts.go) and,
// in a coverage run, the spec's gcov data (coverage.go).
func (h *Harness) afterEach(ctx SpecContext) {
	if h.guest != nil {
		h.keepCoverage(ctx)
		h.afterSpec(ctx, h.guest)
	}
}

// RequireKernel skips the spec, naming what is missing, unless the guest
// kernel has every item (probe's item names).
func (h *Harness) RequireKernel(items ...string) {
	if err := probe.Require(h.guest.Hello.Caps, items...); err != nil {
		Skip(err.Error())
	}
}

// RequireGeneration skips the spec unless the guest kernel has the
// sub-scheduler API of that generation (probe.Generations), naming what
// it lacks.
func (h *Harness) RequireGeneration(name string) {
	if err := probe.RequireGeneration(h.guest.Hello.Caps, name); err != nil {
		Skip(err.Error())
	}
}

// Caps is what the capability probe found in the guest kernel.
func (g *Guest) Caps() proto.Capabilities { return g.Hello.Caps }

// Trace returns the fixture trace events since the spec started.
func (g *Guest) Trace() []results.TraceEvent {
	return results.TraceEvents(g.Events().Since(g.specMark))
}

// KernelLog returns the kernel log lines since the spec started.
func (g *Guest) KernelLog() []string {
	return results.KernelLog(g.Events().Since(g.specMark))
}

// Dump returns the sched_ext_dump lines since the spec started.
func (g *Guest) Dump() []string {
	return results.DumpLines(g.Events().Since(g.specMark))
}

// SpecFaults returns the console faults seen since the spec started.
func (g *Guest) SpecFaults() []vm.Fault {
	return g.Faults()[g.specFaults:]
}

// ReadString returns a guest file's contents as a string.
func (g *Guest) ReadString(ctx context.Context, path string) (string, error) {
	b, err := g.ReadFile(ctx, path)
	return string(b), err
}

// WriteString writes to an existing guest file (sysfs, procfs, cgroupfs).
func (g *Guest) WriteString(ctx context.Context, path, data string) error {
	return g.WriteFile(ctx, path, []byte(data))
}
