package proto

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"syscall"
)

// The control port carries JSON lines: a request {"id","m","a"} from the
// host, a response {"id","e","r"} from the agent. It is net/rpc's shape
// (methods of the form `func (s *S) Method(args A, reply *R) error`) without
// net/rpc, which links net/http and html/template and so costs the agent
// a third of a second of start-up under emulation.

type request struct {
	ID     uint64          `json:"id"`
	Method string          `json:"m"`
	Args   json.RawMessage `json:"a"`
}

type response struct {
	ID    uint64          `json:"id"`
	Error string          `json:"e,omitempty"`
	Errno int             `json:"n,omitempty"` // the syscall.Errno in Error's chain
	Reply json.RawMessage `json:"r,omitempty"`
}

// ErrClosed is returned by calls on a client whose connection has ended.
var ErrClosed = errors.New("control connection closed")

// Serve answers requests on conn with the exported methods of service until
// conn fails. Each request runs in its own goroutine; a method that panics
// answers with the panic instead of taking the agent down.
func Serve(conn io.ReadWriter, service any) error {
	methods := map[string]reflect.Method{}
	t := reflect.TypeOf(service)
	for i := range t.NumMethod() {
		m := t.Method(i)
		mt := m.Type
		if mt.NumIn() == 3 && mt.In(2).Kind() == reflect.Pointer && mt.NumOut() == 1 && mt.Out(0) == reflect.TypeFor[error]() {
			methods[m.Name] = m
		}
	}
	recv := reflect.ValueOf(service)
	var wmu sync.Mutex
	enc := json.NewEncoder(conn)
	reply := func(r response) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = enc.Encode(r)
	}
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			continue
		}
		m, ok := methods[req.Method]
		if !ok {
			reply(response{ID: req.ID, Error: fmt.Sprintf("unknown method %q", req.Method)})
			continue
		}
		go func() {
			resp := response{ID: req.ID}
			defer func() {
				if p := recover(); p != nil {
					resp.Error = fmt.Sprintf("%s panicked: %v", req.Method, p)
					resp.Reply = nil
				}
				reply(resp)
			}()
			args := reflect.New(m.Type.In(1))
			if len(req.Args) > 0 {
				if err := json.Unmarshal(req.Args, args.Interface()); err != nil {
					resp.Error = fmt.Sprintf("%s: decode arguments: %v", req.Method, err)
					return
				}
			}
			out := reflect.New(m.Type.In(2).Elem())
			if errv := m.Func.Call([]reflect.Value{recv, args.Elem(), out})[0]; !errv.IsNil() {
				err := errv.Interface().(error)
				resp.Error = err.Error()
				var errno syscall.Errno
				if errors.As(err, &errno) {
					resp.Errno = int(errno)
				}
				return
			}
			resp.Reply, _ = json.Marshal(out.Interface())
		}()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

// Client calls the agent's methods. It is safe for concurrent use.
type Client struct {
	wmu     sync.Mutex
	enc     *json.Encoder
	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan response
	err     error // set once the connection has ended
}

// NewClient starts reading responses from conn.
func NewClient(conn io.ReadWriter) *Client {
	c := &Client{enc: json.NewEncoder(conn), pending: map[uint64]chan response{}}
	go c.read(conn)
	return c
}

func (c *Client) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var resp response
		if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
			continue
		}
		c.mu.Lock()
		ch := c.pending[resp.ID]
		delete(c.pending, resp.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- resp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = ErrClosed
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

// Call invokes method with args and decodes the answer into reply. An error
// the method returned comes back as a *RemoteError.
func (c *Client) Call(ctx context.Context, method Method, args, reply any) error {
	a, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode %s arguments: %w", method, err)
	}
	ch := make(chan response, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	err = c.enc.Encode(request{ID: id, Method: string(method), Args: a})
	c.wmu.Unlock()
	if err != nil {
		c.forget(id)
		return fmt.Errorf("send %s: %w", method, err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return ErrClosed
		}
		if resp.Error != "" {
			return &RemoteError{Method: method, Msg: resp.Error, Errno: syscall.Errno(resp.Errno)}
		}
		if reply != nil && len(resp.Reply) > 0 {
			if err := json.Unmarshal(resp.Reply, reply); err != nil {
				return fmt.Errorf("decode %s reply: %w", method, err)
			}
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return ctx.Err()
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// RemoteError is an error a guest method returned. Errno is the system
// error in its chain, if any: errors.Is(err, unix.EBUSY) works on it.
type RemoteError struct {
	Method Method
	Msg    string
	Errno  syscall.Errno
}

func (e *RemoteError) Error() string { return e.Msg }

// Unwrap returns the system error the guest method failed with, or nil.
func (e *RemoteError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}
