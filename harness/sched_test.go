package harness

import (
	"slices"
	"testing"
)

func TestLogSinceEnabled(t *testing.T) {
	log := []string{
		`sched_ext: BPF scheduler "root" disabled (unregistered from user space)`, // an earlier spec's root
		`sched_ext: BPF scheduler "root" enabled`,
		`sched_ext: BPF sub-scheduler "child" enabled`,
		`sched_ext: BPF sub-scheduler "child" disabled (unregistered from user space)`,
		`sched_ext: BPF sub-scheduler "child" enabled`,
		`something else`,
	}
	for _, tc := range []struct {
		s    Sched
		want []string
	}{
		{Sched{Name: "root"}, log[2:]},
		{Sched{Name: "child", CgroupID: 7}, log[5:]},
		{Sched{Name: "other"}, log},
	} {
		if got := tc.s.LogSinceEnabled(log); !slices.Equal(got, tc.want) {
			t.Errorf("%s: LogSinceEnabled = %q, want %q", tc.s.Name, got, tc.want)
		}
	}
}
