package harness

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/proto"
)

// CgroupRoot is where the agent mounts cgroup2 in the guest.
const CgroupRoot = "/sys/fs/cgroup"

// SysfsRoot is the root scheduler's directory in sysfs.
const SysfsRoot = "/sys/kernel/sched_ext/root"

// Sched is a fixture scheduler loaded in the guest.
type Sched struct {
	g        *Guest
	ID       int
	Name     string
	CgroupID uint64 // 0 for the root scheduler
}

// Load loads a fixture scheduler and, unless req.NoAttach, attaches it (see
// proto.LoadScheduler). The spec's record keeps it for exits.json.
func (h *Harness) Load(ctx context.Context, req proto.LoadScheduler) (*Sched, error) {
	g := h.guest
	id, err := g.LoadScheduler(ctx, req)
	if err != nil {
		return nil, err
	}
	s := &Sched{g: g, ID: id.ID, Name: req.Name, CgroupID: id.CgroupID}
	h.trackSched(s, req.Fixture)
	return s, nil
}

// Exit returns the scheduler's exit info; Kind 0 means it is still running.
func (s *Sched) Exit(ctx context.Context) (proto.ExitInfo, error) {
	return s.g.SchedulerExit(ctx, s.ID)
}

// Counters returns the scheduler's counters: those named, or all.
func (s *Sched) Counters(ctx context.Context, names ...string) (map[string]uint64, error) {
	return s.g.SchedulerCounters(ctx, s.ID, names...)
}

// Counter returns a function reading one counter, for Eventually(ctx, ...).
func (s *Sched) Counter(name string) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		c, err := s.Counters(ctx, name)
		return c[name], err
	}
}

// ProgStats returns bpf_prog_info statistics of the scheduler's dispatch programs.
func (s *Sched) ProgStats(ctx context.Context) ([]proto.ProgStat, error) {
	return s.g.SchedulerProgStats(ctx, s.ID)
}

// Detach closes the scheduler's link, which unregisters it.
func (s *Sched) Detach(ctx context.Context) error { return s.g.DetachScheduler(ctx, s.ID) }

// Attach attaches a scheduler loaded with NoAttach.
func (s *Sched) Attach(ctx context.Context) error { return s.g.AttachScheduler(ctx, s.ID) }

// Close detaches the scheduler and frees it in the guest; its counters and
// exit info are gone afterwards.
func (s *Sched) Close(ctx context.Context) error { return s.g.CloseScheduler(ctx, s.ID) }

// Command runs an operation inside a parent fixture from its ops.dispatch
// (proto.Cmd*): for the capability kfuncs (Linux 7.3) the cmask is cids, or
// the kernel's online cmask when cids is nil.
func (s *Sched) Command(ctx context.Context, op int, cgid, caps uint64, cids []int, out bool) (proto.CommandResult, error) {
	return s.g.SchedulerCommand(ctx, proto.Command{ID: s.ID, Op: op, CgroupID: cgid, Caps: caps, Cids: cids, Online: cids == nil, Out: out})
}

// GrantDenied reads the cids a parent fixture's sub_attach could not grant.
func (s *Sched) GrantDenied(ctx context.Context) ([]int, error) {
	return s.g.SchedulerGrantDenied(ctx, s.ID)
}

// Cmask reads a cmask in the scheduler's arena at an address it recorded.
func (s *Sched) Cmask(ctx context.Context, addr uint64) ([]int, error) {
	return s.g.SchedulerCmask(ctx, s.ID, addr)
}

// SysfsDir finds the scheduler's directory under /sys/kernel/sched_ext:
// root for the root scheduler, root/sub/sub-<cgid>[/sub/sub-<cgid>...] for
// a sub-scheduler. It fails when the kernel shows no such directory.
func (s *Sched) SysfsDir(ctx context.Context) (string, error) {
	if s.CgroupID == 0 {
		_, err := s.g.ReadFile(ctx, SysfsRoot+"/ops")
		return SysfsRoot, err
	}
	want := fmt.Sprintf("sub-%d", s.CgroupID)
	dirs := []string{SysfsRoot}
	for len(dirs) > 0 {
		dir := dirs[0]
		dirs = dirs[1:]
		names, err := s.g.ReadDir(ctx, dir+"/sub")
		if err != nil {
			continue
		}
		for _, e := range names {
			if e == want {
				return dir + "/sub/" + e, nil
			}
			dirs = append(dirs, dir+"/sub/"+e)
		}
	}
	return "", fmt.Errorf("no directory sub-%d under %s", s.CgroupID, SysfsRoot)
}

// EnabledLine is the kernel log line that says the scheduler was enabled.
func (s *Sched) EnabledLine() string {
	if s.CgroupID == 0 {
		return fmt.Sprintf(`BPF scheduler "%s" enabled`, s.Name)
	}
	return fmt.Sprintf(`BPF sub-scheduler "%s" enabled`, s.Name)
}

// LogSinceEnabled returns the lines of log after the last one announcing
// this scheduler enabled (all of log when there is none): what the kernel
// said about this load and not about an earlier scheduler of the same name,
// whose "disabled" line can arrive after the spec started.
func (s *Sched) LogSinceEnabled(log []string) []string {
	on := s.EnabledLine()
	for i := len(log) - 1; i >= 0; i-- {
		if strings.Contains(log[i], on) {
			return log[i+1:]
		}
	}
	return log
}

// DisabledLine is the start of the kernel log line that says the scheduler
// was disabled.
func (s *Sched) DisabledLine() string {
	if s.CgroupID == 0 {
		return fmt.Sprintf(`BPF scheduler "%s" disabled`, s.Name)
	}
	return fmt.Sprintf(`BPF sub-scheduler "%s" disabled`, s.Name)
}

// Cgroup is a cgroup2 directory in the guest.
type Cgroup struct {
	// Path is absolute, e.g. /sys/fs/cgroup/a/b; Rel is "/a/b", as the
	// kernel prints it; both "" for the root cgroup.
	Path, Rel string
	ID        uint64
}

// NewCgroup creates a cgroup below the root, e.g. "a" or "a/b" (the parent
// must exist), and returns it with its id.
func (g *Guest) NewCgroup(ctx context.Context, name string) (Cgroup, error) {
	p := path.Join(CgroupRoot, name)
	id, err := g.MakeCgroup(ctx, p)
	if err != nil {
		return Cgroup{}, err
	}
	return Cgroup{Path: p, Rel: strings.TrimPrefix(p, CgroupRoot), ID: id}, nil
}

// RemoveCgroup removes a cgroup directory.
func (g *Guest) RemoveCgroup(ctx context.Context, c Cgroup) error {
	return g.RemoveDir(ctx, c.Path)
}

// Workload is a set of worker processes in the guest.
type Workload struct {
	g *Guest
	proto.WorkloadID
}

// Start starts the workers req describes.
func (g *Guest) Start(ctx context.Context, req proto.Workload) (*Workload, error) {
	id, err := g.StartWorkload(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Workload{g: g, WorkloadID: id}, nil
}

// Wait waits up to timeout for the workers to finish.
func (w *Workload) Wait(ctx context.Context, timeout time.Duration) (proto.WorkloadDone, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	return w.g.WaitWorkload(ctx, proto.WaitWorkload{ID: w.ID, Timeout: timeout})
}

// Owners returns, in the kernel's view, the scheduler that owns each task.
func (g *Guest) Owners(ctx context.Context, pids ...int) ([]proto.TaskOwner, error) {
	return g.TaskOwners(ctx, pids)
}
