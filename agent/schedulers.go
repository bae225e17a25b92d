package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/fixtures"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/sched"
)

// schedulers are the fixture schedulers the host loaded, by id.
type schedulers struct {
	mu   sync.Mutex
	next int
	all  map[int]*sched.Scheduler
}

func (s *schedulers) load(req proto.LoadScheduler) (proto.SchedulerID, error) {
	spec, err := fixtures.Spec(req.Fixture)
	if err != nil {
		return proto.SchedulerID{}, err
	}
	cgid := req.CgroupID
	if req.Cgroup != "" && cgid == 0 {
		var st unix.Stat_t
		if err := unix.Stat(req.Cgroup, &st); err != nil {
			return proto.SchedulerID{}, fmt.Errorf("load %s on cgroup %s: %w", req.Name, req.Cgroup, err)
		}
		cgid = st.Ino
	}
	sch, err := sched.Load(spec, nil, sched.Options{
		Name:        req.Name,
		TimeoutMs:   req.TimeoutMs,
		Flags:       req.Flags,
		SubCgroupID: cgid,
		Knobs:       req.Knobs,
		Members:     req.Members,
	})
	if err != nil {
		// %+v carries the whole verifier log to the host.
		return proto.SchedulerID{}, fmt.Errorf("%+v", err)
	}
	if !req.NoAttach {
		if err := sch.Attach(); err != nil {
			sch.Close()
			return proto.SchedulerID{}, err
		}
	}
	// After attach: ops.init reserves the arena page the masks live in.
	if req.GrantCids != nil || req.GrantDenied {
		if err := sch.SetGrantMask(req.GrantCids, req.GrantDenied); err != nil {
			sch.Close()
			return proto.SchedulerID{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[int]*sched.Scheduler{}
	}
	s.next++
	s.all[s.next] = sch
	return proto.SchedulerID{ID: s.next, CgroupID: cgid}, nil
}

func (s *schedulers) get(id int) (*sched.Scheduler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch := s.all[id]; sch != nil {
		return sch, nil
	}
	return nil, fmt.Errorf("no scheduler %d", id)
}

// closeAll detaches and closes every scheduler, children before parents
// (the newest first), and returns the names of those still attached.
func (s *schedulers) closeAll() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int, 0, len(s.all))
	for id := range s.all {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(ids)))
	var detached []string
	for _, id := range ids {
		if s.all[id].Attached() {
			detached = append(detached, s.all[id].Name())
		}
		s.all[id].Close()
		delete(s.all, id)
	}
	return detached
}

// LoadScheduler loads a fixture and attaches it.
func (s *Service) LoadScheduler(args proto.LoadScheduler, reply *proto.SchedulerID) error {
	id, err := s.schedulers.load(args)
	*reply = id
	return err
}

// DetachScheduler closes a scheduler's link.
func (s *Service) DetachScheduler(args proto.SchedulerID, _ *proto.Empty) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	return sch.Detach()
}

// SchedulerExit reads a scheduler's exit info.
func (s *Service) SchedulerExit(args proto.SchedulerID, reply *proto.ExitInfo) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	info, err := sch.Exit()
	if err != nil {
		return err
	}
	*reply = proto.ExitInfo{Kind: info.Kind, KindName: info.KindName, ExitCode: info.ExitCode, ExitCPU: info.ExitCPU, Reason: info.Reason, Msg: info.Msg}
	return nil
}

// SchedulerCounters reads a scheduler's counters: the ones named, or all.
func (s *Service) SchedulerCounters(args proto.CountersQuery, reply *proto.Counters) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	all, err := sch.Counters()
	if err != nil || len(args.Names) == 0 {
		reply.Values = all
		return err
	}
	reply.Values = make(map[string]uint64, len(args.Names))
	for _, n := range args.Names {
		v, ok := all[n]
		if !ok {
			return fmt.Errorf("scheduler %s has no counter %q", sch.Name(), n)
		}
		reply.Values[n] = v
	}
	return nil
}

// SchedulerProgStats reads the statistics of a scheduler's dispatch programs.
func (s *Service) SchedulerProgStats(args proto.SchedulerID, reply *proto.ProgStats) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	for name, p := range sch.DispatchPrograms() {
		st, err := p.Stats()
		if err != nil {
			return fmt.Errorf("stats of %s program %s: %w", sch.Name(), name, err)
		}
		reply.Progs = append(reply.Progs, proto.ProgStat{Name: name, RecursionMisses: st.RecursionMisses, RunCount: st.RunCount})
	}
	sort.Slice(reply.Progs, func(i, j int) bool { return reply.Progs[i].Name < reply.Progs[j].Name })
	return nil
}

// AfterSpec reads the exit info of the spec's schedulers, resets the guest
// (Reset) and reads the kernel's taint.
func (s *Service) AfterSpec(args proto.AfterSpecQuery, reply *proto.AfterSpec) error {
	for _, id := range args.IDs {
		e := proto.ExitOrError{ID: id}
		var info proto.ExitInfo
		if err := s.SchedulerExit(proto.SchedulerID{ID: id}, &info); err != nil {
			e.Err = err.Error()
		} else {
			e.Exit = &info
		}
		reply.Exits = append(reply.Exits, e)
	}
	if err := s.reset(&reply.Reset); err != nil {
		reply.ResetErr = err.Error()
	}
	reply.Taint = taint()
	return nil
}

// reset returns the guest to a clean state between specs: every scheduler
// detached, every worker killed and reaped, every cgroup the host made
// removed (deepest first), and sched_ext back to disabled.
func (s *Service) reset(reply *proto.ResetReport) error {
	began := time.Now()
	step := func(what string) {
		if s.events != nil {
			s.events.agentf("reset: %s (%s)", what, time.Since(began).Round(time.Millisecond))
		}
	}
	reply.Detached = s.schedulers.closeAll()
	step(fmt.Sprintf("schedulers closed, %d were attached", len(reply.Detached)))
	reply.Killed = s.workloads.killAndReap(10 * time.Second)
	step(fmt.Sprintf("workers reaped, %d were running", reply.Killed))

	s.mu.Lock()
	cgroups := s.cgroups
	s.cgroups = nil
	s.mu.Unlock()
	sort.Slice(cgroups, func(i, j int) bool { return strings.Count(cgroups[i], "/") > strings.Count(cgroups[j], "/") })
	var errs []error
	for _, cg := range cgroups {
		err := retry(5*time.Second, func() error {
			if err := unix.Rmdir(cg); err != nil && !errors.Is(err, unix.ENOENT) {
				return err // busy a while longer: its tasks are still exiting
			}
			return nil // gone, or removed by the spec itself
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", cg, err))
			continue
		}
		reply.Removed = append(reply.Removed, cg)
	}
	step(fmt.Sprintf("%d cgroups removed", len(reply.Removed)))
	err := retry(10*time.Second, func() error {
		b, err := os.ReadFile("/sys/kernel/sched_ext/state")
		if err != nil {
			return err
		}
		reply.State = strings.TrimSpace(string(b))
		if reply.State != "disabled" {
			return fmt.Errorf("sched_ext state is %q", reply.State)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// retry calls f until it succeeds or the timeout passes; cgroup removal and
// scheduler teardown finish asynchronously in the kernel.
func retry(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SchedulerGrantDenied reads the cids a parent fixture's sub_attach could
// not grant.
func (s *Service) SchedulerGrantDenied(args proto.SchedulerID, reply *proto.Cids) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	reply.Cids, err = sch.GrantDenied()
	return err
}

// SchedulerCommand runs a capability kfunc inside a parent fixture.
func (s *Service) SchedulerCommand(args proto.Command, reply *proto.CommandResult) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	cids := args.Cids
	if args.Online {
		cids = nil
	} else if cids == nil {
		cids = []int{}
	}
	timeout := args.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := sch.Command(ctx, args.Op, args.CgroupID, args.Caps, cids, args.Out || args.Op == proto.CmdCaps)
	*reply = proto.CommandResult{Ret: res.Ret, Out: res.Out}
	return err
}

// SchedulerCmask reads a cmask in a scheduler's arena.
func (s *Service) SchedulerCmask(args proto.ArenaCmask, reply *proto.Cids) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	reply.Cids, err = sch.ReadCmask(args.Addr)
	return err
}

// owners is the task iterator behind TaskOwners, loaded on first use.
type owners struct {
	mu   sync.Mutex
	iter *sched.Owners
}

func (o *owners) read() ([]sched.Owner, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.iter == nil {
		spec, err := fixtures.OwnersSpec()
		if err != nil {
			return nil, err
		}
		if o.iter, err = sched.LoadOwners(spec); err != nil {
			return nil, err
		}
	}
	return o.iter.Read()
}

// TaskOwners says which scheduler owns each task, in the kernel's view.
func (s *Service) TaskOwners(args proto.TaskOwnersQuery, reply *proto.TaskOwners) error {
	all, err := s.owners.read()
	if err != nil {
		return err
	}
	byPID := make(map[int]sched.Owner, len(all))
	for _, o := range all {
		byPID[o.PID] = o
	}
	for _, pid := range args.PIDs {
		o, ok := byPID[pid]
		t := proto.TaskOwner{PID: pid, Sched: o.Name, CgroupID: o.CgroupID, Level: o.Level, Gone: !ok}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/sched", pid)); err == nil {
			t.OnExt = extEnabled(b)
		}
		reply.Owners = append(reply.Owners, t)
	}
	return nil
}

// extEnabled reads "ext.enabled : 1" from a /proc/<pid>/sched file.
func extEnabled(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "ext.enabled" {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}

// AttachScheduler attaches a scheduler loaded with NoAttach.
func (s *Service) AttachScheduler(args proto.SchedulerID, _ *proto.Empty) error {
	sch, err := s.schedulers.get(args.ID)
	if err != nil {
		return err
	}
	return sch.Attach()
}

// CloseScheduler detaches a scheduler and releases its maps and programs
// (freeing an arena takes a while under emulation: a spec that loads many
// schedulers closes them as it goes rather than leave them to Reset).
func (s *Service) CloseScheduler(args proto.SchedulerID, _ *proto.Empty) error {
	s.schedulers.mu.Lock()
	sch := s.schedulers.all[args.ID]
	delete(s.schedulers.all, args.ID)
	s.schedulers.mu.Unlock()
	if sch == nil {
		return fmt.Errorf("no scheduler %d", args.ID)
	}
	return sch.Close()
}
