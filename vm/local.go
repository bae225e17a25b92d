package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// AccelGuest is the accelerator a Local machine reports: it is the guest
// itself.
const AccelGuest Accel = "in-guest"

// Local returns a Machine whose agent runs in this very process, inside
// the guest (agent.ServeLocal on the other ends of ctl and events): the
// replay of a recorded spec (package repro) runs the suites on it, so the
// spec's own code and assertions run unchanged. There is no QEMU process:
//
//   - the console watcher reads the kernel log from the event stream, so
//     oopses, BUGs and WARNINGs are caught as on the host (a panic ends the
//     guest, replay and all);
//   - the machine counts as exited when ctl ends (the agent closes it on
//     PowerOff, as a power-off ends the host's connection), and Close ends it;
//   - dir holds the console log ("" = the system's temporary directory).
//
// It waits up to 30 s for the agent's ready event.
func Local(ctl net.Conn, events io.Reader, dir string) (*Machine, error) {
	m := &Machine{accel: AccelGuest, console: newConsole(), events: newEventLog(), exited: make(chan struct{}), started: time.Now()}
	var err error
	if m.dir, err = os.MkdirTemp(dir, "scxcheck-local-"); err != nil {
		return nil, fmt.Errorf("local machine: %w", err)
	}
	if m.consoleF, err = os.Create(filepath.Join(m.dir, "console.log")); err != nil {
		os.RemoveAll(m.dir)
		return nil, fmt.Errorf("local machine: %w", err)
	}
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(events)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var ev proto.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Kind == proto.EventKmsg {
				fmt.Fprintln(m.consoleF, ev.Line)
				m.console.add(ev.Line)
			}
			if _, err := pw.Write(append(sc.Bytes(), '\n')); err != nil {
				break
			}
		}
		pw.Close()
	}()
	go m.events.readFrom(pr)
	var once sync.Once
	conn := &notifyConn{Conn: ctl, closed: func() { once.Do(func() { close(m.exited) }) }}
	m.conns = append(m.conns, ctl)
	select {
	case <-m.events.ready:
	case <-time.After(30 * time.Second):
		m.Close()
		return nil, fmt.Errorf("%w: the in-process agent sent no ready event in 30s", ErrBoot)
	}
	m.bootTime = time.Since(m.started)
	m.client = proto.NewClient(conn)
	return m, nil
}

// notifyConn calls closed when a read fails: the connection has ended.
type notifyConn struct {
	net.Conn
	closed func()
}

func (c *notifyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.closed()
	}
	return n, err
}
