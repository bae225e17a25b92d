package sched

import "testing"

func TestClassAddrs(t *testing.T) {
	kallsyms := []byte(`ffffffff81e3a1c0 R stop_sched_class
ffffffff81e3a2a0 R dl_sched_class
ffffffff81e3a380 R rt_sched_class
ffffffff81e3a460 R fair_sched_class
ffffffff81e3a540 d ext_sched_class
ffffffff81e3a620 R idle_sched_class
ffffffff81000000 T _stext
garbage
`)
	got := ClassAddrs(kallsyms)
	want := [len(TimelineClasses)]uint64{0xffffffff81e3a1c0, 0xffffffff81e3a2a0, 0xffffffff81e3a380, 0xffffffff81e3a460, 0xffffffff81e3a540, 0xffffffff81e3a620}
	if got != want {
		t.Errorf("ClassAddrs = %x, want %x", got, want)
	}
	if got := ClassAddrs([]byte("0000000000000000 R fair_sched_class\n")); got[3] != 0 {
		t.Errorf("a hidden address (kptr_restrict) = %x, want 0", got[3])
	}
}
