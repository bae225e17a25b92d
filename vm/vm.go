// Package vm boots a kernel under QEMU with the scxcheck agent as init and
// talks to it.
//
// A Machine is one QEMU process: the kernel under test, an initramfs holding
// the agent, the serial console captured to a file and watched for kernel
// faults, and two virtio-serial ports to the agent (typed RPC, and a stream
// of kernel log and trace lines). Every wait is bounded; Close kills QEMU and
// removes the machine's temporary files on every path.
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/scxcheck/scxcheck/initramfs"
	"github.com/scxcheck/scxcheck/proto"
)

// Accel selects QEMU's accelerator.
type Accel string

// Accelerators. AccelAuto uses KVM only when a probe boot proves it works.
const (
	AccelAuto Accel = "auto"
	AccelKVM  Accel = "kvm"
	AccelTCG  Accel = "tcg"
)

// TCGThreads is TCG's threading mode.
type TCGThreads string

// TCG threading modes. Multi-threaded TCG runs each vCPU on its own host
// thread, but on QEMU 7.2 it races with the kernel's int3-based live code
// patching: enabling a sched_ext scheduler flips static keys, and a vCPU
// can execute a stale int3 ("Oops: int3" in __schedule, seen about once in
// fifteen scheduler loads). Single-threaded TCG interleaves the vCPUs on one
// host thread and does not race; it is the default.
const (
	TCGSingle TCGThreads = "single"
	TCGMulti  TCGThreads = "multi"
)

// ParseTCGThreads checks a --tcg-threads value.
func ParseTCGThreads(s string) (TCGThreads, error) {
	switch t := TCGThreads(s); t {
	case TCGSingle, TCGMulti:
		return t, nil
	}
	return "", fmt.Errorf("unknown TCG threading %q: want single or multi", s)
}

// ParseAccel checks an --accel value.
func ParseAccel(s string) (Accel, error) {
	switch a := Accel(s); a {
	case AccelAuto, AccelKVM, AccelTCG:
		return a, nil
	}
	return "", fmt.Errorf("unknown accelerator %q: want auto, kvm or tcg", s)
}

// Errors a caller can tell apart.
var (
	// ErrNoQEMU means the QEMU binary is not installed.
	ErrNoQEMU = errors.New("QEMU not found")
	// ErrKVM means KVM was asked for and does not work.
	ErrKVM = errors.New("KVM does not work")
	// ErrBoot means the kernel did not bring the agent up.
	ErrBoot = errors.New("VM did not boot")
	// ErrExited means QEMU is gone: the guest powered off, panicked or was killed.
	ErrExited = errors.New("VM exited")
	// ErrNoAnswer means the agent did not answer a call in time while QEMU
	// kept running: the agent is stopped, hung or starved.
	ErrNoAnswer = errors.New("no answer")
)

// Config describes a machine to boot.
type Config struct {
	// Kernel is the file given to -kernel: an ELF vmlinux (PVH boot) or a bzImage.
	Kernel string
	// Initramfs is the archive given to -initrd; see WriteInitramfs.
	Initramfs string
	// Accel is the accelerator; "" means AccelAuto.
	Accel Accel
	// TCGThreads selects TCG's threading; "" means TCGSingle.
	TCGThreads TCGThreads
	// CPUs and MemoryMiB size the guest; 0 means 2 CPUs and 1024 MiB.
	CPUs, MemoryMiB int
	// Cmdline holds extra kernel parameters.
	Cmdline []string
	// QEMU is the emulator binary; "" means qemu-system-x86_64 from PATH.
	QEMU string
	// Dir keeps the console log; "" means the machine's temporary directory,
	// removed by Close.
	Dir string
	// ReadyTimeout bounds the boot up to the agent's ready event; 0 means
	// 90 s under TCG. A KVM probe boot gets KVMProbeTimeout.
	ReadyTimeout time.Duration
	// Log receives one-line notices (accelerator fallback, say); nil discards.
	Log func(format string, args ...any)
	// KVMVerdicts, if set, is a file remembering failed KVM probes of
	// AccelAuto per host, QEMU and kernel for KVMVerdictTTL: a boot with a
	// remembered failure skips the probe and says so.
	KVMVerdicts string
	// waitAgent false boots without an agent: the bare boot of the benchmark.
	bare bool
}

// KVMProbeTimeout bounds a KVM boot on AccelAuto before falling back to TCG.
// A working KVM reaches the agent in well under a second.
const KVMProbeTimeout = 15 * time.Second

// DefaultReadyTimeout bounds a TCG boot, which takes ~2 s on an idle machine.
const DefaultReadyTimeout = 90 * time.Second

// WriteInitramfs writes an initramfs at dst with the agent binary as /init.
func WriteInitramfs(dst, agent string) error {
	if err := CheckStatic(agent); err != nil {
		return err
	}
	var a initramfs.Archive
	a.Add(initramfs.File{Name: "/init", Mode: 0o755, Source: agent})
	return a.WriteFile(dst)
}

// Machine is a running VM.
type Machine struct {
	cfg       Config
	accel     Accel
	dir       string // temporary directory, removed by Close
	cmd       *exec.Cmd
	console   *console
	events    *EventLog
	client    *proto.Client
	conns     []net.Conn
	stderr    lockedBuffer
	started   time.Time
	bootTime  time.Duration
	exited    chan struct{}
	exitErr   error
	closeOnce sync.Once
	consoleF  *os.File
	// closing and poweringOff record that scxcheck itself ended QEMU (Close)
	// or asked the guest to power off (Shutdown): see Diagnose.
	closing, poweringOff atomic.Bool
}

// Boot starts QEMU and waits for the agent's ready event, or, on AccelAuto,
// first tries KVM and falls back to TCG with a notice.
func Boot(ctx context.Context, cfg Config) (*Machine, error) {
	if cfg.Accel == "" {
		cfg.Accel = AccelAuto
	}
	if cfg.Accel == AccelAuto {
		key := probeKey(cfg.qemuPath(), cfg.Kernel)
		if reason := kvmUnavailable(); reason != "" {
			cfg.Accel = AccelTCG
		} else if v, ok := rememberedKVMFailure(cfg.KVMVerdicts, key, time.Now()); cfg.KVMVerdicts != "" && ok {
			cfg.logf("KVM probe skipped: it failed %s ago with this host, QEMU and kernel (%s); using TCG (remembered in %s for %s; delete it to probe again)",
				time.Since(v.Failed).Round(time.Second), v.Reason, cfg.KVMVerdicts, KVMVerdictTTL)
			cfg.Accel = AccelTCG
		} else {
			probe := cfg
			probe.Accel = AccelKVM
			probe.ReadyTimeout = KVMProbeTimeout
			m, err := boot(ctx, probe)
			if err == nil {
				if cfg.KVMVerdicts != "" {
					_ = rememberKVM(cfg.KVMVerdicts, key, false, "", time.Now())
				}
				return m, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			cfg.logf("KVM probe failed (%v); falling back to TCG", firstLine(err))
			if cfg.KVMVerdicts != "" {
				if err := rememberKVM(cfg.KVMVerdicts, key, true, firstLine(err), time.Now()); err != nil {
					cfg.logf("remember the failed KVM probe: %v", err)
				}
			}
			cfg.Accel = AccelTCG
		}
	}
	return boot(ctx, cfg)
}

// qemuPath is the QEMU binary's path, as far as it can be found.
func (c Config) qemuPath() string {
	q := c.QEMU
	if q == "" {
		q = "qemu-system-x86_64"
	}
	if p, err := exec.LookPath(q); err == nil {
		return p
	}
	return q
}

func (c Config) logf(format string, args ...any) {
	if c.Log != nil {
		c.Log(format, args...)
	}
}

func kvmUnavailable() string {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return err.Error()
	}
	f.Close()
	return ""
}

func boot(ctx context.Context, cfg Config) (_ *Machine, err error) {
	qemu := cfg.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	qemuPath, err := CheckQEMU(qemu)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{cfg.Kernel, cfg.Initramfs} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("boot VM: %w", err)
		}
	}
	if cfg.CPUs == 0 {
		cfg.CPUs = 2
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 1024
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}

	m := &Machine{cfg: cfg, accel: cfg.Accel, console: newConsole(), events: newEventLog(), exited: make(chan struct{})}
	m.dir, err = os.MkdirTemp("", "scxcheck-vm-")
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	logDir := cfg.Dir
	if logDir == "" {
		logDir = m.dir
	}
	m.consoleF, err = os.Create(filepath.Join(logDir, "console.log"))
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}

	ctlL, err := net.Listen("unix", filepath.Join(m.dir, "ctl.sock"))
	if err != nil {
		return nil, fmt.Errorf("boot VM: listen for the control port: %w", err)
	}
	defer ctlL.Close()
	evL, err := net.Listen("unix", filepath.Join(m.dir, "events.sock"))
	if err != nil {
		return nil, fmt.Errorf("boot VM: listen for the events port: %w", err)
	}
	defer evL.Close()

	m.cmd = exec.Command(qemuPath, qemuArgs(cfg, m.dir)...)
	m.cmd.Stdin = nil
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("boot VM: %w", err)
	}
	m.cmd.Stderr = &m.stderr
	// QEMU must not outlive us, even if we are killed.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("boot VM: start %s: %w", qemuPath, err)
	}
	consoleDone := make(chan struct{})
	go func() {
		m.console.copyFrom(stdout, m.consoleF)
		close(consoleDone)
	}()
	go func() {
		werr := m.cmd.Wait()
		<-consoleDone
		m.exitErr = werr
		close(m.exited)
	}()

	accept := func(l net.Listener) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := l.Accept(); ch <- res{c, err} }()
		timeout := time.After(30 * time.Second)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case r := <-ch:
				return r.c, r.err
			case <-m.exited:
				return nil, m.exitError("before connecting its serial ports")
			case <-timeout:
				return nil, fmt.Errorf("%w: QEMU did not connect its serial ports in 30s", ErrBoot)
			case <-ctx.Done():
				return nil, fmt.Errorf("boot VM: %w", ctx.Err())
			case <-tick.C:
				if err := m.kvmFailure(); err != nil {
					return nil, err
				}
			}
		}
	}
	ctl, err := accept(ctlL)
	if err != nil {
		return nil, err
	}
	m.conns = append(m.conns, ctl)
	ev, err := accept(evL)
	if err != nil {
		return nil, err
	}
	m.conns = append(m.conns, ev)
	go m.events.readFrom(ev)

	if cfg.bare {
		return m, nil
	}

	timer := time.NewTimer(cfg.ReadyTimeout)
	defer timer.Stop()
	kvmErr := time.NewTicker(100 * time.Millisecond)
	defer kvmErr.Stop()
	for {
		select {
		case <-m.events.ready:
			m.bootTime = time.Since(m.started)
			m.client = proto.NewClient(ctl)
			return m, nil
		case <-m.exited:
			return nil, m.exitError("before the agent was ready")
		case <-timer.C:
			return nil, fmt.Errorf("%w: the agent was not ready after %s (%s)%s", ErrBoot, cfg.ReadyTimeout, cfg.Accel, m.consoleContext())
		case <-ctx.Done():
			return nil, fmt.Errorf("boot VM: %w", ctx.Err())
		case <-kvmErr.C:
			if err := m.kvmFailure(); err != nil {
				return nil, err
			}
		}
	}
}

// kvmFailure returns ErrKVM once QEMU has reported a KVM internal error: on
// some hosts it then stays alive, paused, without ever running the guest or
// even connecting its serial ports.
func (m *Machine) kvmFailure() error {
	if m.accel == AccelKVM && strings.Contains(m.stderr.String(), "KVM internal error") {
		return fmt.Errorf("%w: QEMU reported %q", ErrKVM, firstLineContaining(m.stderr.String(), "KVM internal error"))
	}
	return nil
}

func qemuArgs(cfg Config, dir string) []string {
	cmdline := append([]string{"console=ttyS0", "panic=-1", "loglevel=5", "8250.nr_uarts=1"}, cfg.Cmdline...)
	args := []string{
		"-nodefaults", "-no-user-config", "-no-reboot",
		"-display", "none", "-vga", "none", "-monitor", "none",
		"-m", fmt.Sprint(cfg.MemoryMiB), "-smp", fmt.Sprint(cfg.CPUs),
		"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con",
		"-device", "virtio-serial-pci",
		"-chardev", "socket,id=ctl,path=" + filepath.Join(dir, "ctl.sock"),
		"-device", "virtserialport,chardev=ctl,name=" + proto.ControlPort,
		"-chardev", "socket,id=ev,path=" + filepath.Join(dir, "events.sock"),
		"-device", "virtserialport,chardev=ev,name=" + proto.EventsPort,
		"-kernel", cfg.Kernel, "-initrd", cfg.Initramfs,
		"-append", strings.Join(cmdline, " "),
	}
	if cfg.Accel == AccelKVM {
		args = append(args, "-accel", "kvm", "-cpu", "host")
	} else {
		threads := cfg.TCGThreads
		if threads == "" {
			threads = TCGSingle
		}
		args = append(args, "-accel", "tcg,thread="+string(threads))
	}
	return args
}

// exitError describes QEMU's exit, with the console's faults or tail.
func (m *Machine) exitError(when string) error {
	return fmt.Errorf("%w %s: %s%s", ErrExited, when, m.exitStatus(), m.consoleContext())
}

func (m *Machine) exitStatus() string {
	status := "QEMU exited"
	var ee *exec.ExitError
	if errors.As(m.exitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = fmt.Sprintf("QEMU was killed by signal %s", ws.Signal())
		} else {
			status = fmt.Sprintf("QEMU exited with status %d", ee.ExitCode())
		}
	}
	if s := strings.TrimSpace(m.stderr.String()); s != "" {
		status += ": " + firstLine(errors.New(s))
	}
	return status
}

// consoleContext is what an error shows of the console: the first fault's
// excerpt, else the last lines.
func (m *Machine) consoleContext() string {
	if f := m.console.Faults(); len(f) > 0 {
		return fmt.Sprintf("\nconsole shows %s:\n%s", f[0].Kind, m.console.Excerpt(f[0]))
	}
	if tail := m.console.Tail(15); tail != "" {
		return "\nconsole tail:\n" + tail
	}
	return "\n(console is empty)"
}

// Accel is the accelerator the machine runs on.
func (m *Machine) Accel() Accel { return m.accel }

// BootTime is the time from starting QEMU to the agent's ready event.
func (m *Machine) BootTime() time.Duration { return m.bootTime }

// Events is the log of everything the agent streamed.
func (m *Machine) Events() *EventLog { return m.events }

// Faults returns the kernel faults seen on the console so far.
func (m *Machine) Faults() []Fault { return m.console.Faults() }

// FaultExcerpt returns the console lines around a fault.
func (m *Machine) FaultExcerpt(f Fault) string { return m.console.Excerpt(f) }

// ConsoleTail returns the last n console lines.
func (m *Machine) ConsoleTail(n int) string { return m.console.Tail(n) }

// ConsoleLog is the path of the console log file.
func (m *Machine) ConsoleLog() string { return m.consoleF.Name() }

// Exited is closed when QEMU has exited.
func (m *Machine) Exited() <-chan struct{} { return m.exited }

// Alive reports whether QEMU is still running.
func (m *Machine) Alive() bool {
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// DefaultCallTimeout bounds an agent call whose context has no deadline.
const DefaultCallTimeout = 60 * time.Second

// Agent returns the typed client of the machine's agent.
func (m *Machine) Agent() proto.Agent { return proto.NewAgent(m) }

// Call invokes an agent method, e.g. Call(ctx, proto.MethodHello,
// proto.Empty{}, &hello); Agent gives the typed client over it.
// It fails when ctx ends, after DefaultCallTimeout if ctx has no deadline, or
// when QEMU exits, with the console's faults in the error.
func (m *Machine) Call(ctx context.Context, method proto.Method, args, reply any) error {
	if m.client == nil {
		return fmt.Errorf("agent call %s: the machine has no agent", method)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	done := make(chan error, 1)
	go func() { done <- m.client.Call(ctx, method, args, reply) }()
	select {
	case err := <-done:
		var remote *proto.RemoteError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &remote):
			return fmt.Errorf("agent call %s: %w", method, err)
		case errors.Is(err, proto.ErrClosed):
			<-m.exitedOrAfter(5 * time.Second)
			if !m.Alive() {
				return fmt.Errorf("agent call %s: %w", method, m.exitError("during the call"))
			}
			return fmt.Errorf("agent call %s: %w", method, err)
		case ctx.Err() != nil:
			return fmt.Errorf("agent call %s: %w: %w%s", method, ErrNoAnswer, ctx.Err(), m.consoleContext())
		default:
			return fmt.Errorf("agent call %s: %w", method, err)
		}
	case <-m.exited:
		return fmt.Errorf("agent call %s: %w", method, m.exitError("during the call"))
	}
}

func (m *Machine) exitedOrAfter(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-m.exited:
		case <-time.After(d):
		}
		close(ch)
	}()
	return ch
}

// Shutdown asks the agent to power off and waits for QEMU to exit, killing it
// if it has not within the timeout. It then releases everything, as Close.
func (m *Machine) Shutdown(ctx context.Context) error {
	defer m.Close()
	if !m.Alive() {
		return nil
	}
	m.poweringOff.Store(true)
	if m.client != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = m.Agent().PowerOff(cctx)
		cancel()
	}
	select {
	case <-m.exited:
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("shut down VM: QEMU did not exit 20s after power-off; killed it")
	case <-ctx.Done():
		return fmt.Errorf("shut down VM: %w", ctx.Err())
	}
}

// Close kills QEMU if it still runs and removes the machine's temporary
// files. It is safe to call more than once and after Shutdown.
func (m *Machine) Close() error {
	m.closeOnce.Do(func() {
		m.closing.Store(true)
		if m.cmd != nil && m.cmd.Process != nil && m.Alive() {
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-m.exited:
			case <-time.After(10 * time.Second):
			}
		}
		for _, c := range m.conns {
			c.Close()
		}
		if m.consoleF != nil {
			m.consoleF.Close()
		}
		if m.dir != "" {
			os.RemoveAll(m.dir)
		}
	})
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

func firstLineContaining(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return sub
}

// BootBare boots cfg's kernel with cfg's initramfs but does not wait for an
// agent: for a trivial init such as PowerOffInit. cfg.Accel must be KVM or
// TCG. The caller waits on Exited.
func BootBare(ctx context.Context, cfg Config) (*Machine, error) {
	if cfg.Accel == AccelAuto || cfg.Accel == "" {
		return nil, fmt.Errorf("bare boot needs an explicit accelerator, not %q", cfg.Accel)
	}
	cfg.bare = true
	return boot(ctx, cfg)
}

// Started is when QEMU was started.
func (m *Machine) Started() time.Time { return m.started }
