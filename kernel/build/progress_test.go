package build

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestProgressReportsPhasesAndKeepsTheLog(t *testing.T) {
	var log bytes.Buffer
	var reports []string
	p := newProgress(&log, func(format string, args ...any) { reports = append(reports, fmt.Sprintf(format, args...)) }, time.Hour)
	out := `  SYNC    include/config/auto.conf
  HOSTCC  scripts/basic/fixdep
  CC      /obj/tools/objtool/libsubcmd/exec-cmd.o
  CC      kernel/fork.o
  LDS     arch/x86/kernel/vmlinux.lds
  OBJCOPY arch/x86/boot/startup/gdt_idt.pi.o
  CC      mm/filemap.o
kernel/sched/ext/ext.c:12:3: error: 'x' undeclared
  LD      vmlinux.o
  BTF     .tmp_vmlinux1
  NM      System.map
  OBJCOPY vmlinux
  CC      arch/x86/boot/compressed/misc.o
  ZSTD22  arch/x86/boot/compressed/vmlinux.bin.zst
  BUILD   arch/x86/boot/bzImage
`
	// Written in pieces that split lines.
	for i := 0; i < len(out); i += 7 {
		p.Write([]byte(out[i:min(i+7, len(out))]))
	}
	if log.String() != out {
		t.Errorf("log holds %q", log.String())
	}
	var phases []string
	for _, r := range reports {
		_, rest, _ := strings.Cut(r, "s ")
		phase, _, _ := strings.Cut(rest, ":")
		phases = append(phases, phase)
	}
	want := []string{"prepare", "compile", "link", "image"}
	if strings.Join(phases, ",") != strings.Join(want, ",") {
		t.Errorf("phases %q, want %q (reports %q)", phases, want, reports)
	}
	if !strings.Contains(reports[1], "CC kernel/fork.o") || !strings.Contains(reports[3], "(12 steps)") {
		t.Errorf("reports %q lack the target or the step count", reports)
	}
	if e := p.errorLines(); len(e) != 1 || !strings.Contains(e[0], "'x' undeclared") {
		t.Errorf("error lines %q", e)
	}
}
