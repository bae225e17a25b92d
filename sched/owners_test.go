package sched

import (
	"reflect"
	"testing"
)

func TestParseOwners(t *testing.T) {
	got, err := ParseOwners([]byte("1 1 1 0 root\n212 212 47 1 child\n213 212 47 1 child\n9 9 0 -1 -\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Owner{
		{PID: 1, TGID: 1, CgroupID: 1, Level: 0, Name: "root"},
		{PID: 212, TGID: 212, CgroupID: 47, Level: 1, Name: "child"},
		{PID: 213, TGID: 212, CgroupID: 47, Level: 1, Name: "child"},
		{PID: 9, TGID: 9, CgroupID: 0, Level: -1, Name: ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseOwners = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"1 1 1 0\n", "x 1 1 0 root\n", "1 1 -1 0 root\n"} {
		if _, err := ParseOwners([]byte(bad)); err == nil {
			t.Errorf("ParseOwners(%q) succeeded", bad)
		}
	}
}
