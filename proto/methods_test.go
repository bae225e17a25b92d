package proto

import (
	"context"
	"reflect"
	"testing"
)

// recorder is a fake Caller that records what Agent sends: the method, the
// argument type and the type Agent decodes the reply into.
type recorder struct {
	method       Method
	args, replyT reflect.Type
}

func (r *recorder) Call(_ context.Context, m Method, args, reply any) error {
	r.method, r.args, r.replyT = m, reflect.TypeOf(args), reflect.TypeOf(reply).Elem()
	return nil
}

// Every method of Agent calls one method with the types Signature gives,
// and every method in Methods has such a client method: client and the
// table agree (the agent's test checks the server against the same table).
func TestAgentMatchesSignatures(t *testing.T) {
	rec := &recorder{}
	a := NewAgent(rec)
	at := reflect.TypeOf(a)
	called := map[Method]bool{}
	for i := range at.NumMethod() {
		m := at.Method(i)
		in := []reflect.Value{reflect.ValueOf(a), reflect.ValueOf(context.Background())}
		n := m.Type.NumIn()
		if m.Type.IsVariadic() {
			n-- // called with no variadic arguments
		}
		for j := 2; j < n; j++ {
			in = append(in, reflect.Zero(m.Type.In(j)))
		}
		*rec = recorder{}
		m.Func.Call(in)
		args, reply, ok := Signature(rec.method)
		if !ok {
			t.Errorf("Agent.%s calls %q, which is not in the method table", m.Name, rec.method)
			continue
		}
		if rec.args != args || rec.replyT != reply {
			t.Errorf("Agent.%s calls %s with %v → %v; the table says %v → %v", m.Name, rec.method, rec.args, rec.replyT, args, reply)
		}
		if string(rec.method) != m.Name {
			t.Errorf("Agent.%s calls %s: client methods are named after the method", m.Name, rec.method)
		}
		called[rec.method] = true
	}
	for _, m := range Methods() {
		if !called[m] {
			t.Errorf("no Agent method calls %s", m)
		}
		if _, _, ok := Signature(m); !ok {
			t.Errorf("%s has no signature", m)
		}
	}
	if len(signatures) != len(Methods()) {
		t.Errorf("%d signatures for %d methods", len(signatures), len(Methods()))
	}
}
