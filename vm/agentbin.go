package vm

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
)

// CheckStatic returns an error unless path is a statically linked x86-64
// ELF executable: the initramfs has no dynamic loader or libc.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("agent binary %s: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("agent binary %s is for %s, the VM is x86-64", path, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("agent binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// AgentBinary returns a static executable that runs the agent when it is
// PID 1: the running program itself when it is static (scxcheck and the
// suites' test binaries both hand over to the agent as init), otherwise a
// static build of cmd/scxcheck made with the go command into dir.
func AgentBinary(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find agent binary: %w", err)
	}
	if CheckStatic(self) == nil {
		return self, nil
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Path == "" {
		return "", fmt.Errorf("find agent binary: %s is dynamically linked and its module is unknown; build it with CGO_ENABLED=0", self)
	}
	out := filepath.Join(dir, "scxcheck-agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, bi.Main.Path+"/cmd/scxcheck")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build static agent (%s is dynamically linked): %v\n%s", self, err, b)
	}
	return out, nil
}

// PowerOffInit returns a minimal static x86-64 ELF executable that powers the
// machine off at once: the init of a bare boot, to measure what the kernel
// alone costs.
func PowerOffInit() []byte {
	code := []byte{
		0xbf, 0xad, 0xde, 0xe1, 0xfe, // mov edi, LINUX_REBOOT_MAGIC1
		0xbe, 0x69, 0x19, 0x12, 0x28, // mov esi, LINUX_REBOOT_MAGIC2
		0xba, 0xdc, 0xfe, 0x21, 0x43, // mov edx, LINUX_REBOOT_CMD_POWER_OFF
		0xb8, 0xa9, 0x00, 0x00, 0x00, // mov eax, SYS_reboot
		0x0f, 0x05, // syscall
		0xeb, 0xfe, // jmp . (never return from init)
	}
	const base, hdrs = 0x400000, 64 + 56
	le := binary.LittleEndian
	b := make([]byte, hdrs, hdrs+len(code))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], base+hdrs) // entry
	le.PutUint64(b[32:], 64)        // phoff
	le.PutUint16(b[52:], 64)        // ehsize
	le.PutUint16(b[54:], 56)        // phentsize
	le.PutUint16(b[56:], 1)         // phnum
	ph := b[64:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(hdrs+len(code)))
	le.PutUint64(ph[40:], uint64(hdrs+len(code)))
	le.PutUint64(ph[48:], 0x1000)
	return append(b, code...)
}
