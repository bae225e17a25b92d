package agent

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

// Service implements the RPC methods the host calls, one per proto.Method:
// each takes one typed request and fills one typed reply; an error travels
// back as its text and the system error in its chain (proto.RemoteError).
// cgroupRoot is where the agent mounts cgroup2.
const cgroupRoot = "/sys/fs/cgroup"

type Service struct {
	events     *eventWriter
	workloads  workloads
	schedulers schedulers
	owners     owners

	mu      sync.Mutex
	cgroups []string // created by MakeCgroup, for the reset after a spec
}

// Hello reports the guest's kernel, CPUs, taint and capabilities.
func (s *Service) Hello(_ proto.Empty, reply *proto.Hello) error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	reply.Release = unix.ByteSliceToString(u.Release[:])
	reply.CPUs = runtime.NumCPU()
	reply.Uptime = time.Duration(uptime() * float64(time.Second))
	reply.Taint = taint()
	reply.Caps = probe.Running()
	return nil
}

// taint reads /proc/sys/kernel/tainted; "" if it cannot.
func taint() string {
	b, _ := os.ReadFile("/proc/sys/kernel/tainted")
	return strings.TrimSpace(string(b))
}

// ReadFile returns a guest file's contents.
func (s *Service) ReadFile(args proto.Path, reply *proto.FileData) error {
	b, err := os.ReadFile(args.Path)
	if err != nil {
		return err
	}
	reply.Data = b
	return nil
}

// WriteFile writes to an existing guest file.
func (s *Service) WriteFile(args proto.WriteFile, _ *proto.Empty) error {
	f, err := os.OpenFile(args.Path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(args.Data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", args.Path, err)
	}
	return f.Close()
}

// ReadDir lists a guest directory.
func (s *Service) ReadDir(args proto.Path, reply *proto.DirEntries) error {
	ents, err := os.ReadDir(args.Path)
	if err != nil {
		return err
	}
	for _, e := range ents {
		reply.Names = append(reply.Names, e.Name())
	}
	return nil
}

// MakeCgroup creates a cgroup2 directory and returns its id (its inode);
// the reset after a spec removes it.
func (s *Service) MakeCgroup(args proto.Path, reply *proto.CgroupID) error {
	if !strings.HasPrefix(args.Path, cgroupRoot+"/") {
		return fmt.Errorf("make cgroup %s: not below %s", args.Path, cgroupRoot)
	}
	if err := os.Mkdir(args.Path, 0o755); err != nil {
		return err
	}
	s.mu.Lock()
	s.cgroups = append(s.cgroups, args.Path)
	s.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Stat(args.Path, &st); err != nil {
		return fmt.Errorf("stat cgroup %s: %w", args.Path, err)
	}
	reply.ID = st.Ino
	return nil
}

// RemoveDir removes a guest directory, e.g. a cgroup.
func (s *Service) RemoveDir(args proto.Path, _ *proto.Empty) error {
	return unix.Rmdir(args.Path)
}

// PowerOff syncs and powers the VM off once the reply has had time to leave.
func (s *Service) PowerOff(_ proto.Empty, _ *proto.Empty) error {
	go func() {
		// The reply is written after this method returns; give it a moment
		// on the port before the machine goes away. The host does not depend
		// on it: it also waits for QEMU to exit.
		time.Sleep(50 * time.Millisecond)
		powerOff()
	}()
	return nil
}

// StartWorkload starts worker processes inside a cgroup.
func (s *Service) StartWorkload(args proto.Workload, reply *proto.WorkloadID) error {
	id, err := s.workloads.start(args)
	*reply = id
	return err
}

// WaitWorkload waits, bounded, for a workload to finish.
func (s *Service) WaitWorkload(args proto.WaitWorkload, reply *proto.WorkloadDone) error {
	done, err := s.workloads.wait(args)
	*reply = done
	return err
}
