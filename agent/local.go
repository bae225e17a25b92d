package agent

import (
	"fmt"
	"io"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// ReplayParam is the kernel command-line parameter that asks the agent to
// replay a recorded spec inside the guest instead of serving the host
// (package repro writes it into a reproduction bundle's QEMU command line).
const ReplayParam = "scxcheck.repro"

// replayRequested returns ReplayParam's value from /proc/cmdline.
func replayRequested(sys system) (string, bool) {
	return cmdlineParam(sys, ReplayParam)
}

func replay(cfg Config, value string) error {
	if cfg.Replay == nil {
		return fmt.Errorf("%s=%s: this agent binary cannot replay a spec (the bundle's /init must be the scxcheck binary)", ReplayParam, value)
	}
	return cfg.Replay(value)
}

// ServeLocal serves the agent in this process to a caller inside the guest
// (the replay of a spec): control calls on ctl, and the event stream (the
// ready event, then every kernel log and trace_pipe line) on events, copied
// to the events port when QEMU provides one. PowerOff does not power off —
// the replay does, with PowerOff, once it has printed its outcome — but
// closes ctl, as a power-off ends the host's connection. It returns when
// ctl ends.
func ServeLocal(ctl io.ReadWriteCloser, events io.Writer) error {
	w := events
	if port, err := openPort(linux{}, proto.EventsPort); err == nil {
		w = io.MultiWriter(events, port)
	}
	ev := newEventWriter(w)
	go streamKmsg(linux{}, ev)
	go streamTrace(linux{}, ev, false)
	ev.send(proto.Event{Kind: proto.EventReady, Time: uptime(), Line: Version + " (in-guest replay)"})
	return proto.Serve(ctl, localService{Service: &Service{events: ev}, ctl: ctl})
}

// localService is the Service with a PowerOff that only ends the
// connection.
type localService struct {
	*Service
	ctl io.Closer
}

// PowerOff closes the connection once the reply has left.
func (l localService) PowerOff(_ proto.Empty, _ *proto.Empty) error {
	go func() {
		time.Sleep(50 * time.Millisecond)
		l.ctl.Close()
	}()
	return nil
}

// OpenPort opens the virtio-serial port QEMU named name.
func OpenPort(name string) (io.ReadWriteCloser, error) { return openPort(linux{}, name) }

// PowerOff syncs and powers the machine off; it does not return.
func PowerOff() { powerOff() }
