package proto

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

type testService struct{}

type addArgs struct{ A, B int }
type sum struct{ N int }

func (testService) Add(a addArgs, r *sum) error { r.N = a.A + a.B; return nil }
func (testService) Fail(_ Empty, _ *Empty) error {
	return errors.New("load parent: ENODEV: no root scheduler")
}
func (testService) Panic(_ Empty, _ *Empty) error { panic("boom") }
func (testService) Slow(_ Empty, _ *Empty) error  { time.Sleep(time.Second); return nil }

func pipe(t *testing.T) (*Client, net.Conn) {
	host, guest := net.Pipe()
	go Serve(guest, testService{})
	t.Cleanup(func() { host.Close(); guest.Close() })
	return NewClient(host), guest
}

func TestCall(t *testing.T) {
	c, _ := pipe(t)
	var r sum
	if err := c.Call(t.Context(), "Add", addArgs{2, 3}, &r); err != nil || r.N != 5 {
		t.Fatalf("Add = %d, %v", r.N, err)
	}
	err := c.Call(t.Context(), "Fail", Empty{}, &Empty{})
	var remote *RemoteError
	if !errors.As(err, &remote) || !strings.Contains(err.Error(), "ENODEV") {
		t.Errorf("Fail = %v, want a RemoteError with the guest's text", err)
	}
	if err := c.Call(t.Context(), "Panic", Empty{}, &Empty{}); err == nil || !strings.Contains(err.Error(), "Panic panicked: boom") {
		t.Errorf("Panic = %v", err)
	}
	if err := c.Call(t.Context(), "Nope", Empty{}, &Empty{}); err == nil || !strings.Contains(err.Error(), `unknown method "Nope"`) {
		t.Errorf("Nope = %v", err)
	}
	// The server survived all of that.
	if err := c.Call(t.Context(), "Add", addArgs{1, 1}, &r); err != nil || r.N != 2 {
		t.Fatalf("Add after errors = %d, %v", r.N, err)
	}
}

func TestCallTimeoutAndClose(t *testing.T) {
	c, guest := pipe(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Call(ctx, "Slow", Empty{}, &Empty{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Slow with a 50ms deadline = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Call(t.Context(), "Slow", Empty{}, &Empty{}) }()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	guest.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("call across a closed connection = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call hung after the connection closed")
	}
}
