package agent

import (
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// system is what the agent does to the machine as its init: mount file
// systems, find and open the virtio-serial ports, read the kernel's files,
// power off. The real one (linux) makes the system calls; tests of the init
// logic fake it.
type system interface {
	MkdirAll(path string) error
	Mount(source, target, fstype string) error
	ReadFile(path string) ([]byte, error)
	WriteFile(path string, data []byte) error
	Glob(pattern string) ([]string, error)
	// Open opens a file for reading and writing (the ports) or reading.
	Open(path string, write bool) (io.ReadWriteCloser, error)
	// RedirectStdio points fds 0-2 at the console.
	RedirectStdio()
	PowerOff()
}

// linux is the system of a real guest.
type linux struct{}

func (linux) MkdirAll(path string) error { return os.MkdirAll(path, 0o755) }

func (linux) Mount(source, target, fstype string) error {
	return unix.Mount(source, target, fstype, 0, "")
}

func (linux) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (linux) WriteFile(path string, data []byte) error { return os.WriteFile(path, data, 0) }

func (linux) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

func (linux) Open(path string, write bool) (io.ReadWriteCloser, error) {
	if write {
		return os.OpenFile(path, os.O_RDWR, 0)
	}
	return os.Open(path)
}

// RedirectStdio points fds 0-2 at the console: the initramfs has no
// /dev/console node, so the kernel started init without them.
func (linux) RedirectStdio() {
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := 0; i <= 2; i++ {
		_ = unix.Dup2(fd, i)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

func (linux) PowerOff() { powerOff() }
