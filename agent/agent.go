// Package agent is the guest side of scxcheck: the program that runs as /init
// (PID 1) in the test VM.
//
// It mounts the filesystems the specs need, serves typed requests from the
// host over a virtio-serial port (package proto), streams the kernel log and
// trace_pipe back over a second port, and powers the VM off when asked. The
// serial console stays the kernel's: the agent writes to it only when it
// cannot reach the host.
package agent

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/proto"
)

// Version identifies the agent's protocol; the host logs it.
const Version = "scxcheck-agent/1"

// IsWorker reports whether this process is a workload worker the agent
// started (it re-executes its own binary); the binary's main then hands
// over to WorkerMain.
func IsWorker() bool { return isWorker() }

// WorkerMain runs one workload worker and exits.
func WorkerMain() { workerMain() }

// Config says what a binary that can be the VM's init does besides serving
// the host.
type Config struct {
	// Replay, if set, replays a recorded spec when the kernel command line
	// holds ReplayParam=<value>; it gets the value. The agent has mounted its
	// filesystems and pointed stdio at the console. The full scxcheck binary
	// sets it (package repro), not the lean scxcheck-agent. It powers the VM
	// off itself; if it returns, its error is printed and the VM powered
	// off.
	Replay func(value string) error
}

// Main runs the agent as the VM's init (PID 1). It never returns: on any
// fatal error it says why on the console and powers the VM off, so the host
// sees QEMU exit.
func Main(cfg Config) {
	err := run(cfg, linux{})
	fmt.Fprintf(os.Stderr, "scxcheck-agent: %v\n", err)
	powerOff()
}

func run(cfg Config, sys system) error {
	start := uptime()
	if err := mountAll(sys); err != nil {
		return err
	}
	mounted := uptime()
	sys.RedirectStdio()
	if v, ok := replayRequested(sys); ok {
		return replay(cfg, v) // a reproduction bundle's boot (local.go)
	}

	ctl, err := openPort(sys, proto.ControlPort)
	if err != nil {
		return err
	}
	evPort, err := openPort(sys, proto.EventsPort)
	if err != nil {
		return err
	}
	events := newEventWriter(evPort)

	timeline := timelineRequested(sys)
	if timeline {
		defer runtime.KeepAlive(startTimeline(sys, events))
	}
	go streamKmsg(sys, events)
	go streamTrace(sys, events, timeline)

	ready := uptime()
	events.send(proto.Event{Kind: proto.EventReady, Time: ready,
		Line: fmt.Sprintf("%s main=%.3f mounts=%.3f ports+streams=%.3f", Version, start, mounted-start, ready-mounted)})
	err = proto.Serve(ctl, &Service{events: events})
	return fmt.Errorf("control port: %w", err)
}

type mount struct {
	source, target, fstype string
	optional               bool
}

var mounts = []mount{
	{"proc", "/proc", "proc", false},
	{"sysfs", "/sys", "sysfs", false},
	{"devtmpfs", "/dev", "devtmpfs", false},
	{"tracefs", "/sys/kernel/tracing", "tracefs", true},
	{"debugfs", "/sys/kernel/debug", "debugfs", true},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", false},
	{"bpf", "/sys/fs/bpf", "bpf", false},
	{"tmpfs", "/tmp", "tmpfs", false},
}

func mountAll(sys system) error {
	for _, m := range mounts {
		if err := sys.MkdirAll(m.target); err != nil && !m.optional {
			return fmt.Errorf("create mount point %s: %w", m.target, err)
		}
		if err := sys.Mount(m.source, m.target, m.fstype); err != nil && !m.optional {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	return nil
}

// openPort opens the virtio-serial port QEMU named name. Without udev there
// is no /dev/virtio-ports/ symlink, so the names are read from sysfs.
func openPort(sys system, name string) (io.ReadWriteCloser, error) {
	dirs, _ := sys.Glob("/sys/class/virtio-ports/*")
	for _, d := range dirs {
		b, err := sys.ReadFile(filepath.Join(d, "name"))
		if err != nil || strings.TrimSpace(string(b)) != name {
			continue
		}
		dev := filepath.Join("/dev", filepath.Base(d))
		f, err := sys.Open(dev, true)
		if err != nil {
			return nil, fmt.Errorf("open virtio-serial port %s (%s): %w", name, dev, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("virtio-serial port %s not found among %d ports (is CONFIG_VIRTIO_CONSOLE=y?)", name, len(dirs))
}

func uptime() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func powerOff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Only reached if the reboot call failed; PID 1 must not exit.
	select {}
}
