package vm

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClassifyLine(t *testing.T) {
	for line, want := range map[string]FaultKind{
		"[    3.1] Kernel panic - not syncing: Fatal exception in interrupt":          FaultPanic,
		"[    2.9] BUG: TASK stack guard page was hit at 00000000f2a5c1e8":            FaultBUG,
		"[    2.9] Oops: stack guard page: 0000 [#1] SMP NOPTI":                       FaultOops,
		"[    4.0] WARNING: CPU: 1 PID: 77 at kernel/sched/ext/ext.c:123 foo+0x1/0x2": FaultWarning,
		"[   30.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:":             FaultRCUStall,
		"[  120.0] INFO: task kworker/0:1:12 blocked for more than 120 seconds.":      FaultHungTask,
	} {
		got, ok := ClassifyLine(line)
		if !ok || got != want {
			t.Errorf("ClassifyLine(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
	for _, line := range []string{
		"[    0.5] sched_ext: BPF scheduler \"parent\" enabled",
		"[    1.0] Run /init as init process",
		"DEBUG: nothing wrong",
	} {
		if kind, ok := ClassifyLine(line); ok {
			t.Errorf("ClassifyLine(%q) = %q, want no fault", line, kind)
		}
	}
}

func TestConsoleExcerpt(t *testing.T) {
	c := newConsole()
	for _, l := range []string{"a", "b", "BUG: kernel NULL pointer dereference", "c", "d"} {
		c.add(l)
	}
	f := c.Faults()
	if len(f) != 1 || f[0].Kind != FaultBUG || f[0].Index != 2 {
		t.Fatalf("faults = %+v", f)
	}
	if got := c.Excerpt(f[0]); got != "a\nb\nBUG: kernel NULL pointer dereference\nc\nd" {
		t.Errorf("excerpt = %q", got)
	}
}

func TestPowerOffInitIsStaticELF(t *testing.T) {
	p := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(p, PowerOffInit(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckStatic(p); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC || f.Entry != 0x400000+120 {
		t.Errorf("type %v entry %#x", f.Type, f.Entry)
	}
}

func TestCheckStaticRejectsDynamic(t *testing.T) {
	err := CheckStatic("/bin/sh")
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("CheckStatic(/bin/sh) = %v, want dynamically linked", err)
	}
}

func TestParseAccel(t *testing.T) {
	for _, ok := range []string{"auto", "kvm", "tcg"} {
		if _, err := ParseAccel(ok); err != nil {
			t.Errorf("ParseAccel(%q): %v", ok, err)
		}
	}
	if _, err := ParseAccel("hvf"); err == nil {
		t.Error("ParseAccel(hvf) succeeded")
	}
}

func TestBootWithoutQEMU(t *testing.T) {
	_, err := Boot(t.Context(), Config{Kernel: "k", Initramfs: "i", QEMU: "qemu-system-nonexistent", Accel: AccelTCG})
	if err == nil || !strings.Contains(err.Error(), "apt-get install qemu-system-x86") {
		t.Fatalf("Boot = %v, want ErrNoQEMU with install advice", err)
	}
}
