package kconfig

import (
	"slices"
	"strings"
	"testing"
)

func TestMergeReplacesTheBaseLines(t *testing.T) {
	base := "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"old\"\nCONFIG_KEEP=y\n"
	frags := []Fragment{
		{Name: "one.config", Data: []byte("# comment\nCONFIG_B=y\nCONFIG_C=\"new\"\n")},
		{Name: "two.config", Data: []byte("# CONFIG_A is not set\nCONFIG_B=m\n")},
	}
	m, err := Merge([]byte(base), frags)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(m.Config)), "\n")
	want := []string{"CONFIG_KEEP=y", "CONFIG_C=\"new\"", "# CONFIG_A is not set", "CONFIG_B=m"}
	if !slices.Equal(lines, want) {
		t.Errorf("merged config:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	var reqs []string
	for _, r := range m.Requests {
		reqs = append(reqs, r.String()+" @"+r.Where)
	}
	wantReqs := []string{"CONFIG_B=m @two.config:2", "CONFIG_C=\"new\" @one.config:3", "CONFIG_A off @two.config:1"}
	if !slices.Equal(reqs, wantReqs) {
		t.Errorf("requests %q, want %q", reqs, wantReqs)
	}
	if len(m.Overrides) != 1 || !strings.Contains(m.Overrides[0], "CONFIG_B=m (two.config:2) overrides CONFIG_B=y (one.config:2)") {
		t.Errorf("overrides %q", m.Overrides)
	}
}

func TestFragmentRejectsWhatIsNotAConfigLine(t *testing.T) {
	for _, bad := range []string{"FOO=y", "CONFIG_FOO", "CONFIG_=y", "CONFIG_FOO=", "CONFIG_F OO=y"} {
		_, err := Fragment{Name: "bad.config", Data: []byte("CONFIG_OK=y\n" + bad + "\n")}.Assignments()
		if err == nil || !strings.Contains(err.Error(), "bad.config:2") {
			t.Errorf("%q: err = %v, want one naming bad.config:2", bad, err)
		}
	}
}

func TestDefaultFragmentsAreWellFormedAndCommented(t *testing.T) {
	frags := Default()
	if len(frags) != 2 {
		t.Fatalf("%d default fragments", len(frags))
	}
	for _, f := range append(frags, Coverage()) {
		as, err := f.Assignments()
		if err != nil {
			t.Fatal(err)
		}
		if len(as) < 10 && f.Name != Coverage().Name {
			t.Errorf("%s sets only %d symbols", f.Name, len(as))
		}
		// Every assignment has its own comment right above it.
		lines := strings.Split(string(f.Data), "\n")
		isAssignment := func(l string) bool {
			_, off := notSet(l)
			return strings.HasPrefix(l, "CONFIG_") || off
		}
		for i, l := range lines {
			if !isAssignment(l) {
				continue
			}
			if i == 0 || !strings.HasPrefix(lines[i-1], "# ") || isAssignment(lines[i-1]) {
				t.Errorf("%s:%d: %s has no comment saying why", f.Name, i+1, l)
			}
		}
	}
	// What scxcheck requires of any kernel is requested by its fragments.
	m, err := Merge(nil, frags)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range m.Requests {
		got[r.Sym] = r.Value
	}
	for _, sym := range []string{"SCHED_CLASS_EXT", "EXT_SUB_SCHED", "EXT_GROUP_SCHED", "CGROUPS", "CGROUP_SCHED",
		"BPF_SYSCALL", "BPF_JIT", "DEBUG_INFO_BTF", "FTRACE", "BPF_EVENTS", "MAGIC_SYSRQ", "STACKTRACE",
		"SERIAL_8250_CONSOLE", "VIRTIO_PCI", "VIRTIO_CONSOLE", "DEVTMPFS", "BLK_DEV_INITRD", "PVH", "ACPI",
		"DEBUG_FS", "TMPFS", "PRINTK", "64BIT"} {
		if got[sym] != "y" {
			t.Errorf("the default fragments do not ask for CONFIG_%s=y", sym)
		}
	}
}
