package agent

import (
	"reflect"
	"slices"
	"testing"

	"github.com/scxcheck/scxcheck/proto"
)

// The agent serves exactly proto.Methods, each with the argument and reply
// types of proto.Signature: the server and the typed client agree (the
// client side is checked in package proto).
func TestServiceServesEveryMethod(t *testing.T) {
	st := reflect.TypeOf(&Service{})
	var served []string
	for i := range st.NumMethod() {
		m := st.Method(i)
		served = append(served, m.Name)
		args, reply, ok := proto.Signature(proto.Method(m.Name))
		if !ok {
			t.Errorf("Service.%s is served but is no proto.Method", m.Name)
			continue
		}
		mt := m.Type
		if mt.NumIn() != 3 || mt.In(1) != args || mt.In(2) != reflect.PointerTo(reply) || mt.NumOut() != 1 || mt.Out(0) != reflect.TypeFor[error]() {
			t.Errorf("Service.%s has type %v, want func(%v, *%v) error", m.Name, mt, args, reply)
		}
	}
	for _, m := range proto.Methods() {
		if !slices.Contains(served, string(m)) {
			t.Errorf("proto.%s is not served by the agent", m)
		}
	}
}
