package build

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func sampleInputs() KeyInputs {
	return KeyInputs{
		Recipe: recipe, Tree: "content:abc", Patches: []string{"p1"}, Base: "make:tinyconfig",
		Fragments: []string{"f1", "f2"}, Arch: arch, CC: "gcc (Debian 12.2.0-14) 12.2.0",
		LD: "GNU ld (GNU Binutils for Debian) 2.40", Pahole: "v1.30",
	}
}

func TestKeySameInputsSameKey(t *testing.T) {
	a, b := sampleInputs(), sampleInputs()
	if a.Key() != b.Key() {
		t.Fatal("equal inputs, different keys")
	}
	if len(a.Key()) != 64 {
		t.Errorf("key %q is not a hex SHA-256", a.Key())
	}
}

// Every field of KeyInputs is part of the key: changing any one misses.
func TestKeyAnyChangedInputMisses(t *testing.T) {
	base := sampleInputs()
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		changed := sampleInputs()
		f := reflect.ValueOf(&changed).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int:
			f.SetInt(f.Int() + 1)
		case reflect.Slice:
			f.Set(reflect.Append(f, reflect.ValueOf("extra")))
		default:
			t.Fatalf("field %s of kind %s: extend this test", v.Type().Field(i).Name, f.Kind())
		}
		if changed.Key() == base.Key() {
			t.Errorf("changing %s did not change the key", v.Type().Field(i).Name)
		}
	}
	// A plain kernel's key is what it was before coverage kernels
	// existed: its entries stay valid.
	if data, _ := json.Marshal(sampleInputs()); strings.Contains(string(data), "coverage") {
		t.Errorf("a plain kernel's key inputs name coverage: %s", data)
	}
	// Order matters for fragments and patches.
	swapped := sampleInputs()
	swapped.Fragments = []string{"f2", "f1"}
	if swapped.Key() == base.Key() {
		t.Error("reordering the fragments did not change the key")
	}
}
