package suites

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
)

// cgroupRoot is where the agent mounts cgroup2 in the guest.
const cgroupRoot = "/sys/fs/cgroup"

// Sched is a fixture scheduler loaded in the guest.
type Sched struct {
	g        *Guest
	ID       int
	Name     string
	CgroupID uint64 // 0 for the root scheduler
}

// Load loads a fixture scheduler and attaches it (see proto.LoadScheduler).
func (g *Guest) Load(req proto.LoadScheduler) (*Sched, error) {
	var id proto.SchedulerID
	if err := g.Call(context.Background(), "LoadScheduler", req, &id); err != nil {
		return nil, err
	}
	s := &Sched{g: g, ID: id.ID, Name: req.Name, CgroupID: id.CgroupID}
	trackSched(s, req.Fixture) // for the spec's exits.json
	return s, nil
}

// Exit returns the scheduler's exit info; Kind 0 means it is still running.
func (s *Sched) Exit() (proto.ExitInfo, error) {
	var info proto.ExitInfo
	err := s.g.Call(context.Background(), "SchedulerExit", proto.SchedulerID{ID: s.ID}, &info)
	return info, err
}

// Counters returns the scheduler's counters.
func (s *Sched) Counters() (map[string]uint64, error) {
	var c proto.Counters
	err := s.g.Call(context.Background(), "SchedulerCounters", proto.SchedulerID{ID: s.ID}, &c)
	return c.Values, err
}

// Counter returns a function reading one counter, for Eventually.
func (s *Sched) Counter(name string) func() (uint64, error) {
	return func() (uint64, error) {
		c, err := s.Counters()
		if err != nil {
			return 0, err
		}
		v, ok := c[name]
		if !ok {
			return 0, fmt.Errorf("scheduler %s has no counter %q (has %v)", s.Name, name, keys(c))
		}
		return v, nil
	}
}

// ProgStats returns bpf_prog_info statistics of the scheduler's programs.
func (s *Sched) ProgStats() ([]proto.ProgStat, error) {
	var p proto.ProgStats
	err := s.g.Call(context.Background(), "SchedulerProgStats", proto.SchedulerID{ID: s.ID}, &p)
	return p.Progs, err
}

// Detach closes the scheduler's link, which unregisters it.
func (s *Sched) Detach() error {
	return s.g.Call(context.Background(), "DetachScheduler", proto.SchedulerID{ID: s.ID}, &proto.Empty{})
}

// Cgroup is a cgroup2 directory in the guest.
type Cgroup struct {
	// Path is absolute, e.g. /sys/fs/cgroup/a/b; Rel is "/a/b", as the
	// kernel prints it.
	Path, Rel string
	ID        uint64
}

// NewCgroup creates a cgroup below the root, e.g. "a" or "a/b" (the parent
// must exist), and returns it with its id.
func (g *Guest) NewCgroup(name string) (Cgroup, error) {
	p := path.Join(cgroupRoot, name)
	if err := g.Call(context.Background(), "Mkdir", proto.Path{Path: p}, &proto.Empty{}); err != nil {
		return Cgroup{}, err
	}
	var id proto.CgroupID
	if err := g.Call(context.Background(), "CgroupID", proto.Path{Path: p}, &id); err != nil {
		return Cgroup{}, err
	}
	return Cgroup{Path: p, Rel: strings.TrimPrefix(p, cgroupRoot), ID: id.ID}, nil
}

// RemoveCgroup removes a cgroup directory.
func (g *Guest) RemoveCgroup(c Cgroup) error {
	return g.Call(context.Background(), "Rmdir", proto.Path{Path: c.Path}, &proto.Empty{})
}

// Workload is a set of worker processes in the guest.
type Workload struct {
	g *Guest
	proto.WorkloadID
}

// Start starts count workers of a kind in a cgroup ("" for the root) for d.
func (g *Guest) Start(cg string, kind string, count int, d time.Duration) (*Workload, error) {
	return g.StartWorkload(proto.Workload{Cgroup: cg, Kind: kind, Count: count, Duration: d})
}

// StartWorkload starts the workers req describes.
func (g *Guest) StartWorkload(req proto.Workload) (*Workload, error) {
	var id proto.WorkloadID
	if err := g.Call(context.Background(), "StartWorkload", req, &id); err != nil {
		return nil, err
	}
	return &Workload{g: g, WorkloadID: id}, nil
}

// Wait waits up to timeout for the workers to finish.
func (w *Workload) Wait(timeout time.Duration) (proto.WorkloadDone, error) {
	var done proto.WorkloadDone
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	err := w.g.Call(ctx, "WaitWorkload", proto.WaitWorkload{ID: w.ID, Timeout: timeout}, &done)
	return done, err
}

// Trace returns the fixture trace events since the spec started.
func (g *Guest) Trace() []results.TraceEvent {
	return results.TraceEvents(g.Events().Since(g.specMark))
}

// KernelLog returns the kernel log lines since the spec started.
func (g *Guest) KernelLog() []string {
	return results.KernelLog(g.Events().Since(g.specMark))
}

// Dump returns the sched_ext_dump lines since the spec started.
func (g *Guest) Dump() []string {
	return results.DumpLines(g.Events().Since(g.specMark))
}

// Reset returns the guest to a clean state: schedulers detached, workers
// killed, test cgroups removed.
func (g *Guest) Reset(ctx context.Context) (proto.ResetReport, error) {
	var r proto.ResetReport
	err := g.Call(ctx, "Reset", proto.Empty{}, &r)
	return r, err
}

func keys(m map[string]uint64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Owners returns, in the kernel's view, the scheduler that owns each task.
func (g *Guest) Owners(pids ...int) ([]proto.TaskOwner, error) {
	var reply proto.TaskOwners
	err := g.Call(context.Background(), "TaskOwners", proto.TaskOwnersQuery{PIDs: pids}, &reply)
	return reply.Owners, err
}

// Command runs an operation inside a parent fixture from its ops.dispatch
// (proto.Cmd*): for the capability kfuncs (Linux 7.3) the cmask is cids, or
// the kernel's online cmask when cids is nil.
func (s *Sched) Command(op int, cgid, caps uint64, cids []int, out bool) (proto.CommandResult, error) {
	var res proto.CommandResult
	req := proto.Command{ID: s.ID, Op: op, CgroupID: cgid, Caps: caps, Cids: cids, Online: cids == nil, Out: out}
	err := s.g.Call(context.Background(), "SchedulerCommand", req, &res)
	return res, err
}

// GrantDenied reads the cids a parent fixture's sub_attach could not grant.
func (s *Sched) GrantDenied() ([]int, error) {
	var c proto.Cids
	err := s.g.Call(context.Background(), "SchedulerGrantDenied", proto.SchedulerID{ID: s.ID}, &c)
	return c.Cids, err
}

// Cmask reads a cmask in the scheduler's arena at an address it recorded.
func (s *Sched) Cmask(addr uint64) ([]int, error) {
	var c proto.Cids
	err := s.g.Call(context.Background(), "SchedulerCmask", proto.ArenaCmask{ID: s.ID, Addr: addr}, &c)
	return c.Cids, err
}

// SysfsDir finds the scheduler's directory under /sys/kernel/sched_ext:
// root for the root scheduler, root/sub/sub-<cgid>[/sub/sub-<cgid>...] for
// a sub-scheduler. It fails when the kernel shows no such directory.
func (s *Sched) SysfsDir() (string, error) {
	if s.CgroupID == 0 {
		_, err := s.g.ReadFile(sysfsRoot + "/ops")
		return sysfsRoot, err
	}
	want := fmt.Sprintf("sub-%d", s.CgroupID)
	dirs := []string{sysfsRoot}
	for len(dirs) > 0 {
		dir := dirs[0]
		dirs = dirs[1:]
		var ents proto.DirEntries
		if err := s.g.Call(context.Background(), "ReadDir", proto.Path{Path: dir + "/sub"}, &ents); err != nil {
			continue
		}
		for _, e := range ents.Names {
			if e == want {
				return dir + "/sub/" + e, nil
			}
			dirs = append(dirs, dir+"/sub/"+e)
		}
	}
	return "", fmt.Errorf("no directory sub-%d under %s", s.CgroupID, sysfsRoot)
}

// disabledLine is the start of the kernel log line that says the scheduler
// was disabled.
func (s *Sched) disabledLine() string {
	if s.CgroupID == 0 {
		return fmt.Sprintf(`BPF scheduler "%s" disabled`, s.Name)
	}
	return fmt.Sprintf(`BPF sub-scheduler "%s" disabled`, s.Name)
}

// Attach attaches a scheduler loaded with NoAttach.
func (s *Sched) Attach() error {
	return s.g.Call(context.Background(), "AttachScheduler", proto.SchedulerID{ID: s.ID}, &proto.Empty{})
}

// Close detaches the scheduler and frees it in the guest; its counters and
// exit info are gone afterwards.
func (s *Sched) Close() error {
	return s.g.Call(context.Background(), "CloseScheduler", proto.SchedulerID{ID: s.ID}, &proto.Empty{})
}
