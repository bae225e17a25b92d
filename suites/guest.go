package suites

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/vm"
)

// Guest is the VM the specs of this process run in.
type Guest struct {
	*vm.Machine
	// Caps is what the capability probe found in the guest kernel.
	Caps proto.Capabilities
	// Hello is the agent's greeting: kernel release and CPUs.
	Hello proto.Hello

	specMark   int    // event-log mark at the start of the running spec
	specFaults int    // console faults seen before the running spec
	taint      string // /proc/sys/kernel/tainted after boot
	// spec is what the checks after the running spec know (verdict.go).
	spec specState
}

// guest is this process's VM; see ensureGuest.
var guest *Guest

type shared struct {
	Dir       string `json:"dir"`
	Initramfs string `json:"initramfs"`
}

var _ = SynchronizedBeforeSuite(func() []byte {
	if run == nil {
		Fail("suites: Run was not called")
	}
	if run.opts.Boot != nil {
		return []byte("{}") // no VM to build an initramfs for
	}
	if _, err := os.Stat(run.opts.Kernel); err != nil {
		infra(fmt.Errorf("kernel image: %w", err))
	}
	dir, err := os.MkdirTemp("", "scxcheck-suite-")
	if err != nil {
		infra(err)
	}
	agent, err := vm.AgentBinary(dir)
	if err != nil {
		infra(err)
	}
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := vm.WriteInitramfs(initrd, agent); err != nil {
		infra(fmt.Errorf("write initramfs: %w", err))
	}
	b, _ := json.Marshal(shared{Dir: dir, Initramfs: initrd})
	return b
}, func(ctx SpecContext, b []byte) {
	var s shared
	if err := json.Unmarshal(b, &s); err != nil {
		infra(err)
	}
	run.initramfs = s.Initramfs
	run.sharedDir = s.Dir
	if err := bootGuest(ctx, "suite start"); err != nil {
		infra(err)
	}
})

var _ = SynchronizedAfterSuite(func() {
	if guest != nil {
		if err := writeArtifacts(run.opts.Artifacts, guest.Machine, fmt.Sprintf("vm-p%d", GinkgoParallelProcess())); err != nil {
			run.opts.Log("%v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := guest.Shutdown(ctx); err != nil {
			run.opts.Log("%v", err)
		}
		guest = nil
	}
}, func() {
	if run != nil && run.sharedDir != "" {
		os.RemoveAll(run.sharedDir)
	}
})

// infra records an infrastructure failure and fails the current node.
func infra(err error) {
	if run != nil && run.result.Infra == nil {
		run.result.Infra = err
	}
	Fail(err.Error())
}

// bootGuest boots a fresh VM and probes it; why says what prompted it.
func bootGuest(ctx context.Context, why string) error {
	if guest != nil {
		guest.Close()
		guest = nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*vm.DefaultReadyTimeout)
	defer cancel()
	accel := run.opts.Accel
	if run.result.Accel != "" {
		accel = run.result.Accel // resolved by an earlier boot
	}
	run.opts.Log("booting %s (%s; %s)", filepath.Base(run.opts.Kernel), accel, why)
	boot := func(ctx context.Context, cfg vm.Config) (*vm.Machine, error) { return vm.Boot(ctx, cfg) }
	if run.opts.Boot != nil {
		boot = func(ctx context.Context, _ vm.Config) (*vm.Machine, error) { return run.opts.Boot(ctx) }
	}
	m, err := boot(ctx, vm.Config{
		Kernel:     run.opts.Kernel,
		Initramfs:  run.initramfs,
		Accel:      accel,
		TCGThreads: run.opts.TCGThreads,
		QEMU:       run.opts.QEMU,
		Log:        run.opts.Log,
	})
	if err != nil {
		return fmt.Errorf("boot %s: %w", run.opts.Kernel, err)
	}
	g := &Guest{Machine: m}
	if err := m.Call(ctx, "Hello", proto.Empty{}, &g.Hello); err != nil {
		m.Close()
		return err
	}
	if err := m.Call(ctx, "Probe", proto.Empty{}, &g.Caps); err != nil {
		m.Close()
		return err
	}
	if t, err := g.ReadFile("/proc/sys/kernel/tainted"); err == nil {
		g.taint = strings.TrimSpace(t)
	}
	run.result.Accel = m.Accel()
	run.result.BootTimes = append(run.result.BootTimes, m.BootTime())
	run.result.Release = g.Hello.Release
	run.result.API = probe.Describe(g.Caps)
	run.opts.Log("guest up in %s: Linux %s, %d CPUs, sub-scheduler API %s", m.BootTime().Round(time.Millisecond), g.Hello.Release, g.Hello.CPUs, run.result.API)
	guest = g
	return nil
}

// Every spec starts with a live VM and ends with a check of the console.
var _ = BeforeEach(func(ctx SpecContext) {
	if guest == nil || !guest.Alive() {
		why := "the previous VM exited"
		if guest == nil {
			why = "no VM"
		}
		AddReportEntry("VM rebooted", why)
		if err := bootGuest(ctx, why); err != nil {
			infra(err)
		}
	}
	guest.specMark = guest.Events().Mark()
	guest.specFaults = len(guest.Faults())
	guest.spec = specState{}
	beginSpec()
})

// Every spec ends with the harness's verdict on the VM (verdict.go).
var _ = AfterEach(func(ctx SpecContext) {
	captureSpec(ctx) // artifacts.go: before the VM is reset or replaced
	if guest != nil {
		afterSpec(ctx, guest)
	}
})

// requireKernel skips the spec, naming what is missing, unless the guest
// kernel has every item.
func requireKernel(items ...string) {
	if err := probe.Require(guest.Caps, items...); err != nil {
		Skip(err.Error())
	}
}

// requireGeneration skips the spec unless the guest kernel has the
// sub-scheduler API of that generation (probe.Generations), naming what it
// lacks.
func requireGeneration(name string) {
	if err := probe.RequireGeneration(guest.Caps, name); err != nil {
		Skip(err.Error())
	}
}

// WriteFile writes to an existing guest file (sysfs, procfs).
func (g *Guest) WriteFile(path, data string) error {
	return g.Call(context.Background(), "WriteFile", proto.WriteFile{Path: path, Data: []byte(data)}, &proto.Empty{})
}

// ReadFile returns a guest file's contents.
func (g *Guest) ReadFile(path string) (string, error) {
	var reply proto.FileData
	if err := g.Call(context.Background(), "ReadFile", proto.Path{Path: path}, &reply); err != nil {
		return "", err
	}
	return string(reply.Data), nil
}
