package vm

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// fakeLocalAgent answers Hello and closes the connection on PowerOff, as
// agent.ServeLocal does.
type fakeLocalAgent struct{ ctl net.Conn }

func (a fakeLocalAgent) Hello(_ proto.Empty, r *proto.Hello) error {
	r.Release, r.CPUs = "7.2.0-fake", 2
	return nil
}

func (a fakeLocalAgent) PowerOff(_ proto.Empty, _ *proto.Empty) error {
	go func() { time.Sleep(10 * time.Millisecond); a.ctl.Close() }()
	return nil
}

func TestLocal(t *testing.T) {
	host, guest := net.Pipe()
	evR, evW := io.Pipe()
	go proto.Serve(guest, fakeLocalAgent{guest})
	enc := json.NewEncoder(evW)
	go func() {
		enc.Encode(proto.Event{Kind: proto.EventReady, Line: "fake"})
		enc.Encode(proto.Event{Kind: proto.EventKmsg, Line: "sched_ext: BPF scheduler \"x\" enabled"})
		enc.Encode(proto.Event{Kind: proto.EventKmsg, Line: "WARNING: CPU: 1 PID: 7 at kernel/sched/ext/ext.c:42 scx_foo+0x1/0x2"})
	}()
	m, err := Local(host, evR, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var hello proto.Hello
	if err := m.Call(context.Background(), proto.MethodHello, proto.Empty{}, &hello); err != nil || hello.Release != "7.2.0-fake" {
		t.Fatalf("Hello: %+v, %v", hello, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(m.Faults()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := m.Faults(); len(f) != 1 || f[0].Kind != FaultWarning {
		t.Errorf("faults from the kernel log: %+v, want one WARNING", f)
	}
	if got := m.Events().Lines(0, proto.EventKmsg); len(got) != 2 {
		t.Errorf("kernel log events: %q", got)
	}
	if m.Accel() != AccelGuest || !m.Alive() {
		t.Errorf("accel %s alive %v", m.Accel(), m.Alive())
	}
	if err := m.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if m.Alive() {
		t.Error("alive after Shutdown")
	}
}
