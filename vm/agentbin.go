package vm

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

// AgentBinary returns a static executable that runs the agent as PID 1.
// In order of preference: $SCXCHECK_AGENT; scxcheck-agent beside the running
// program (make build puts it there); a fresh static build of
// cmd/scxcheck-agent made with the go command into dir, when the running
// program's module is known (go test, go run); the running program itself
// when it is static (scxcheck hands over to the agent as PID 1, but links
// far more, which costs ~0.3 s of boot under TCG).
func AgentBinary(dir string) (string, error) {
	bin, err := StaticBinary(BinarySource{Env: "SCXCHECK_AGENT", Beside: "scxcheck-agent", Package: "cmd/scxcheck-agent",
		Dir: dir, SelfIfStatic: true, LDFlags: "-s -w"})
	if err != nil {
		return "", fmt.Errorf("find agent binary: %w", err)
	}
	return bin, nil
}

// BinarySource says where StaticBinary looks for a static executable.
type BinarySource struct {
	// Env names an environment variable that holds its path, if set.
	Env string
	// Self: the running program is the executable wanted.
	Self bool
	// Beside is a file name to look for next to the running program.
	Beside string
	// Package is the main package (relative to the running program's
	// module) to build with the go command into Dir, with LDFlags.
	Package, Dir, LDFlags string
	// SelfIfStatic: fall back to the running program when it is static.
	SelfIfStatic bool
}

// StaticBinary finds or builds a static x86-64 executable, in the order of
// BinarySource's fields, and checks it is static (the initramfs has no
// dynamic loader).
func StaticBinary(src BinarySource) (string, error) {
	if src.Env != "" {
		if p := os.Getenv(src.Env); p != "" {
			return p, CheckStatic(p)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if src.Self {
		return self, CheckStatic(self)
	}
	if src.Beside != "" {
		beside := filepath.Join(filepath.Dir(self), src.Beside)
		if _, err := os.Stat(beside); err == nil {
			return beside, CheckStatic(beside)
		}
	}
	buildErr := errors.New("the running program's module is unknown")
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path != "" && src.Package != "" {
		buildErr = errors.New("no go command to build it")
		if _, err := exec.LookPath("go"); err == nil {
			out := filepath.Join(src.Dir, filepath.Base(src.Package))
			args := []string{"build", "-trimpath", "-o", out}
			if src.LDFlags != "" {
				args = append(args, "-ldflags="+src.LDFlags)
			}
			cmd := exec.Command("go", append(args, bi.Main.Path+"/"+src.Package)...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			// Build in the module this was compiled from (a test binary
			// runs anywhere; its source path is known unless built with
			// -trimpath).
			if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
				if root := filepath.Dir(filepath.Dir(file)); fileExists(filepath.Join(root, "go.mod")) {
					cmd.Dir = root
				}
			}
			b, err := cmd.CombinedOutput()
			if err == nil {
				return out, nil
			}
			buildErr = fmt.Errorf("go build %s/%s: %v\n%s", bi.Main.Path, src.Package, err, b)
		}
	}
	if src.SelfIfStatic && CheckStatic(self) == nil {
		return self, nil
	}
	return "", buildErr
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// CheckQEMU returns an ErrNoQEMU error saying how to install QEMU unless
// the binary qemu (a name or a path) can be run.
func CheckQEMU(qemu string) (string, error) {
	p, err := exec.LookPath(qemu)
	if err != nil {
		return "", noQEMUError(qemu)
	}
	return p, nil
}

// noQEMUError says which QEMU is missing and how to install it; it wraps
// ErrNoQEMU.
type noQEMUError string

func (e noQEMUError) Error() string {
	return string(e) + " not found: install QEMU (on Debian: apt-get install qemu-system-x86) or pass --qemu PATH"
}

func (e noQEMUError) Unwrap() error { return ErrNoQEMU }

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
