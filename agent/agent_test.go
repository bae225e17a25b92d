package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// fakeSystem is a guest without a kernel: files are a map, mounts a list,
// the virtio-serial ports net.Pipe ends the test holds the other side of.
// It stands in for the machine only; the code under test is the agent's.
type fakeSystem struct {
	mu       sync.Mutex
	files    map[string]string
	mounts   []string
	failOn   map[string]bool // mount targets that fail
	ports    map[string]io.ReadWriteCloser
	poweroff bool
}

func (f *fakeSystem) MkdirAll(string) error { return nil }

func (f *fakeSystem) Mount(source, target, fstype string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failOn[target] {
		return errors.New("no such device")
	}
	f.mounts = append(f.mounts, fstype+" "+target)
	return nil
}

func (f *fakeSystem) ReadFile(path string) ([]byte, error) {
	if s, ok := f.files[path]; ok {
		return []byte(s), nil
	}
	return nil, os.ErrNotExist
}

func (f *fakeSystem) WriteFile(string, []byte) error { return os.ErrNotExist }

func (f *fakeSystem) Glob(pattern string) ([]string, error) {
	var out []string
	for p := range f.files {
		if ok, _ := filepath.Match(pattern, filepath.Dir(p)); ok && filepath.Base(p) == "name" {
			out = append(out, filepath.Dir(p))
		}
	}
	return out, nil
}

func (f *fakeSystem) Open(path string, write bool) (io.ReadWriteCloser, error) {
	if p, ok := f.ports[path]; ok {
		return p, nil
	}
	return nil, os.ErrNotExist
}

func (f *fakeSystem) RedirectStdio() {}
func (f *fakeSystem) PowerOff()      { f.poweroff = true }

// guestWithPorts is a fake guest with the two ports the host gives, and
// the test's ends of them.
func guestWithPorts(t *testing.T, cmdline string) (sys *fakeSystem, ctl, events net.Conn) {
	t.Helper()
	ctlGuest, ctlHost := net.Pipe()
	evGuest, evHost := net.Pipe()
	t.Cleanup(func() { ctlHost.Close(); evHost.Close(); ctlGuest.Close(); evGuest.Close() })
	return &fakeSystem{
		files: map[string]string{
			"/proc/cmdline":                         cmdline,
			"/sys/class/virtio-ports/vport0p1/name": proto.EventsPort + "\n",
			"/sys/class/virtio-ports/vport0p2/name": proto.ControlPort + "\n",
			"/sys/class/virtio-ports/vport0p3/name": "org.qemu.guest_agent.0\n",
		},
		ports: map[string]io.ReadWriteCloser{"/dev/vport0p1": evGuest, "/dev/vport0p2": ctlGuest},
	}, ctlHost, evHost
}

// The init mounts what the agent needs, finds the ports by name, says it is
// ready on the events port and serves calls on the control port.
func TestRunServesTheHost(t *testing.T) {
	sys, ctl, events := guestWithPorts(t, "console=ttyS0 panic=-1\n")
	sys.failOn = map[string]bool{"/sys/kernel/debug": true} // optional: tolerated
	done := make(chan error, 1)
	go func() { done <- run(Config{}, sys) }()

	// The ready event comes once the ports are open; the log readers,
	// started just before it, may report first that the fake guest has no
	// /dev/kmsg or trace_pipe.
	lines, readyFound := make(chan []byte), make(chan struct{})
	go func() {
		ev := bufio.NewScanner(events)
		for ev.Scan() { // and after the ready event keep the port drained
			select {
			case lines <- append([]byte(nil), ev.Bytes()...):
			case <-readyFound:
			}
		}
	}()
	for waitReady := time.After(10 * time.Second); ; {
		var line []byte
		select {
		case line = <-lines:
		case <-waitReady:
			t.Fatal("no ready event from the agent within 10 s")
		}
		var e proto.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("event %q: %v", line, err)
		}
		if e.Kind == proto.EventReady {
			if !strings.HasPrefix(e.Line, Version) {
				t.Fatalf("ready event %q, want it to start with the agent's version %q", e.Line, Version)
			}
			close(readyFound)
			break
		}
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), nil, 0o644)
	agent := proto.NewAgent(proto.NewClient(ctl))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names, err := agent.ReadDir(ctx, dir)
	if err != nil || len(names) != 1 || names[0] != "a" {
		t.Errorf("ReadDir over the control port = %v, %v", names, err)
	}
	// An error carries its errno.
	if _, err := agent.ReadFile(ctx, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile of a missing file = %v, want an error that is ENOENT", err)
	}

	for _, want := range []string{"proc /proc", "sysfs /sys", "devtmpfs /dev", "cgroup2 /sys/fs/cgroup", "bpf /sys/fs/bpf"} {
		found := false
		for _, m := range sys.mounts {
			found = found || m == want
		}
		if !found {
			t.Errorf("not mounted: %s (mounts %v)", want, sys.mounts)
		}
	}
	ctl.Close()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "control port") {
			t.Errorf("run ended with %v, want the control port's end", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not end when the control port closed")
	}
}

// A required mount that fails stops the init with an error naming it.
func TestRunFailsOnRequiredMount(t *testing.T) {
	sys, _, _ := guestWithPorts(t, "")
	sys.failOn = map[string]bool{"/sys/fs/cgroup": true}
	err := run(Config{}, sys)
	if err == nil || !strings.Contains(err.Error(), "mount cgroup2 on /sys/fs/cgroup") {
		t.Errorf("run = %v, want the failed cgroup2 mount named", err)
	}
}

// Without the ports, the error says which one and what the kernel lacks.
func TestRunWithoutPorts(t *testing.T) {
	sys := &fakeSystem{files: map[string]string{"/proc/cmdline": ""}}
	err := run(Config{}, sys)
	if err == nil || !strings.Contains(err.Error(), "virtio-serial port "+proto.ControlPort+" not found") || !strings.Contains(err.Error(), "CONFIG_VIRTIO_CONSOLE") {
		t.Errorf("run = %v", err)
	}
}

// scxcheck.repro= on the kernel command line hands over to the replay, and a
// binary that cannot replay says so.
func TestRunReplays(t *testing.T) {
	sys, _, _ := guestWithPorts(t, "console=ttyS0 scxcheck.repro=abc123 quiet\n")
	var got string
	err := run(Config{Replay: func(v string) error { got = v; return errors.New("replayed") }}, sys)
	if got != "abc123" || err == nil || err.Error() != "replayed" {
		t.Errorf("replay got %q, run = %v", got, err)
	}
	err = run(Config{}, sys)
	if err == nil || !strings.Contains(err.Error(), "cannot replay") {
		t.Errorf("run without a replay = %v", err)
	}
}
