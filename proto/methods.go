package proto

import (
	"context"
	"reflect"
)

// Method names a call the agent serves. The host's Agent client and the
// agent's Service share these constants: Service has one exported method of
// that name per constant, which a test of package agent checks.
type Method string

// The methods, each with its argument and reply types.
const (
	MethodHello      Method = "Hello"      // Empty → Hello
	MethodReadFile   Method = "ReadFile"   // Path → FileData
	MethodWriteFile  Method = "WriteFile"  // WriteFile → Empty
	MethodReadDir    Method = "ReadDir"    // Path → DirEntries
	MethodMakeCgroup Method = "MakeCgroup" // Path → CgroupID
	MethodRemoveDir  Method = "RemoveDir"  // Path → Empty
	MethodPowerOff   Method = "PowerOff"   // Empty → Empty

	MethodStartWorkload Method = "StartWorkload" // Workload → WorkloadID
	MethodWaitWorkload  Method = "WaitWorkload"  // WaitWorkload → WorkloadDone
	MethodTaskOwners    Method = "TaskOwners"    // TaskOwnersQuery → TaskOwners

	MethodLoadScheduler        Method = "LoadScheduler"        // LoadScheduler → SchedulerID
	MethodAttachScheduler      Method = "AttachScheduler"      // SchedulerID → Empty
	MethodDetachScheduler      Method = "DetachScheduler"      // SchedulerID → Empty
	MethodCloseScheduler       Method = "CloseScheduler"       // SchedulerID → Empty
	MethodSchedulerExit        Method = "SchedulerExit"        // SchedulerID → ExitInfo
	MethodSchedulerCounters    Method = "SchedulerCounters"    // CountersQuery → Counters
	MethodSchedulerProgStats   Method = "SchedulerProgStats"   // SchedulerID → ProgStats
	MethodSchedulerCommand     Method = "SchedulerCommand"     // Command → CommandResult
	MethodSchedulerGrantDenied Method = "SchedulerGrantDenied" // SchedulerID → Cids
	MethodSchedulerCmask       Method = "SchedulerCmask"       // ArenaCmask → Cids

	MethodAfterSpec Method = "AfterSpec" // AfterSpecQuery → AfterSpec
	MethodFault     Method = "Fault"     // Fault → Empty

	MethodGcovReset   Method = "GcovReset"   // Empty → Empty
	MethodGcovCollect Method = "GcovCollect" // GcovQuery → GcovData
)

// Methods returns every method the agent serves.
func Methods() []Method {
	return []Method{MethodHello, MethodReadFile, MethodWriteFile, MethodReadDir, MethodMakeCgroup, MethodRemoveDir,
		MethodPowerOff, MethodStartWorkload, MethodWaitWorkload, MethodTaskOwners, MethodLoadScheduler,
		MethodAttachScheduler, MethodDetachScheduler, MethodCloseScheduler, MethodSchedulerExit,
		MethodSchedulerCounters, MethodSchedulerProgStats, MethodSchedulerCommand, MethodSchedulerGrantDenied,
		MethodSchedulerCmask, MethodAfterSpec, MethodFault, MethodGcovReset, MethodGcovCollect}
}

// Signature returns the argument and reply types of a method: the agent's
// Service method takes (args, *reply), and Agent sends args and decodes
// into a reply. Tests on both sides check against it.
func Signature(m Method) (args, reply reflect.Type, ok bool) {
	sig, ok := signatures[m]
	if !ok {
		return nil, nil, false
	}
	return reflect.TypeOf(sig[0]), reflect.TypeOf(sig[1]), true
}

var signatures = map[Method][2]any{
	MethodHello:                {Empty{}, Hello{}},
	MethodReadFile:             {Path{}, FileData{}},
	MethodWriteFile:            {WriteFile{}, Empty{}},
	MethodReadDir:              {Path{}, DirEntries{}},
	MethodMakeCgroup:           {Path{}, CgroupID{}},
	MethodRemoveDir:            {Path{}, Empty{}},
	MethodPowerOff:             {Empty{}, Empty{}},
	MethodStartWorkload:        {Workload{}, WorkloadID{}},
	MethodWaitWorkload:         {WaitWorkload{}, WorkloadDone{}},
	MethodTaskOwners:           {TaskOwnersQuery{}, TaskOwners{}},
	MethodLoadScheduler:        {LoadScheduler{}, SchedulerID{}},
	MethodAttachScheduler:      {SchedulerID{}, Empty{}},
	MethodDetachScheduler:      {SchedulerID{}, Empty{}},
	MethodCloseScheduler:       {SchedulerID{}, Empty{}},
	MethodSchedulerExit:        {SchedulerID{}, ExitInfo{}},
	MethodSchedulerCounters:    {CountersQuery{}, Counters{}},
	MethodSchedulerProgStats:   {SchedulerID{}, ProgStats{}},
	MethodSchedulerCommand:     {Command{}, CommandResult{}},
	MethodSchedulerGrantDenied: {SchedulerID{}, Cids{}},
	MethodSchedulerCmask:       {ArenaCmask{}, Cids{}},
	MethodAfterSpec:            {AfterSpecQuery{}, AfterSpec{}},
	MethodFault:                {Fault{}, Empty{}},
	MethodGcovReset:            {Empty{}, Empty{}},
	MethodGcovCollect:          {GcovQuery{}, GcovData{}},
}

// Caller makes one call to the agent: a *Client, or a vm.Machine that adds
// timeouts and says what became of its VM.
type Caller interface {
	Call(ctx context.Context, method Method, args, reply any) error
}

// Agent is the typed client of the agent's methods.
type Agent struct {
	c Caller
}

// NewAgent returns the typed client calling through c.
func NewAgent(c Caller) Agent { return Agent{c: c} }

func call[R any](ctx context.Context, a Agent, m Method, args any) (R, error) {
	var r R
	err := a.c.Call(ctx, m, args, &r)
	return r, err
}

// Hello returns the guest's kernel release, CPUs, uptime, taint and what the
// capability probe found.
func (a Agent) Hello(ctx context.Context) (Hello, error) {
	return call[Hello](ctx, a, MethodHello, Empty{})
}

// ReadFile returns a guest file's contents.
func (a Agent) ReadFile(ctx context.Context, path string) ([]byte, error) {
	r, err := call[FileData](ctx, a, MethodReadFile, Path{Path: path})
	return r.Data, err
}

// WriteFile writes to an existing guest file (sysfs, procfs, cgroupfs).
func (a Agent) WriteFile(ctx context.Context, path string, data []byte) error {
	_, err := call[Empty](ctx, a, MethodWriteFile, WriteFile{Path: path, Data: data})
	return err
}

// ReadDir lists a guest directory.
func (a Agent) ReadDir(ctx context.Context, path string) ([]string, error) {
	r, err := call[DirEntries](ctx, a, MethodReadDir, Path{Path: path})
	return r.Names, err
}

// MakeCgroup creates a cgroup2 directory and returns its id.
func (a Agent) MakeCgroup(ctx context.Context, path string) (uint64, error) {
	r, err := call[CgroupID](ctx, a, MethodMakeCgroup, Path{Path: path})
	return r.ID, err
}

// RemoveDir removes a guest directory, e.g. a cgroup.
func (a Agent) RemoveDir(ctx context.Context, path string) error {
	_, err := call[Empty](ctx, a, MethodRemoveDir, Path{Path: path})
	return err
}

// PowerOff powers the guest off.
func (a Agent) PowerOff(ctx context.Context) error {
	_, err := call[Empty](ctx, a, MethodPowerOff, Empty{})
	return err
}

// StartWorkload starts worker processes.
func (a Agent) StartWorkload(ctx context.Context, w Workload) (WorkloadID, error) {
	return call[WorkloadID](ctx, a, MethodStartWorkload, w)
}

// WaitWorkload waits, bounded, for a workload to finish.
func (a Agent) WaitWorkload(ctx context.Context, w WaitWorkload) (WorkloadDone, error) {
	return call[WorkloadDone](ctx, a, MethodWaitWorkload, w)
}

// TaskOwners says which scheduler owns each task, in the kernel's view.
func (a Agent) TaskOwners(ctx context.Context, pids []int) ([]TaskOwner, error) {
	r, err := call[TaskOwners](ctx, a, MethodTaskOwners, TaskOwnersQuery{PIDs: pids})
	return r.Owners, err
}

// LoadScheduler loads a fixture scheduler and, unless NoAttach, attaches it.
func (a Agent) LoadScheduler(ctx context.Context, req LoadScheduler) (SchedulerID, error) {
	return call[SchedulerID](ctx, a, MethodLoadScheduler, req)
}

// AttachScheduler attaches a scheduler loaded with NoAttach.
func (a Agent) AttachScheduler(ctx context.Context, id int) error {
	_, err := call[Empty](ctx, a, MethodAttachScheduler, SchedulerID{ID: id})
	return err
}

// DetachScheduler closes a scheduler's link, which unregisters it.
func (a Agent) DetachScheduler(ctx context.Context, id int) error {
	_, err := call[Empty](ctx, a, MethodDetachScheduler, SchedulerID{ID: id})
	return err
}

// CloseScheduler detaches a scheduler and frees it in the guest.
func (a Agent) CloseScheduler(ctx context.Context, id int) error {
	_, err := call[Empty](ctx, a, MethodCloseScheduler, SchedulerID{ID: id})
	return err
}

// SchedulerExit reads a scheduler's exit info (Kind 0: still running).
func (a Agent) SchedulerExit(ctx context.Context, id int) (ExitInfo, error) {
	return call[ExitInfo](ctx, a, MethodSchedulerExit, SchedulerID{ID: id})
}

// SchedulerCounters reads a scheduler's counters: those named, or all.
func (a Agent) SchedulerCounters(ctx context.Context, id int, names ...string) (map[string]uint64, error) {
	r, err := call[Counters](ctx, a, MethodSchedulerCounters, CountersQuery{ID: id, Names: names})
	return r.Values, err
}

// SchedulerProgStats reads the statistics of a scheduler's dispatch programs.
func (a Agent) SchedulerProgStats(ctx context.Context, id int) ([]ProgStat, error) {
	r, err := call[ProgStats](ctx, a, MethodSchedulerProgStats, SchedulerID{ID: id})
	return r.Progs, err
}

// SchedulerCommand runs an operation inside a parent fixture (Cmd*).
func (a Agent) SchedulerCommand(ctx context.Context, c Command) (CommandResult, error) {
	return call[CommandResult](ctx, a, MethodSchedulerCommand, c)
}

// SchedulerGrantDenied reads the cids a parent fixture's sub_attach could not grant.
func (a Agent) SchedulerGrantDenied(ctx context.Context, id int) ([]int, error) {
	r, err := call[Cids](ctx, a, MethodSchedulerGrantDenied, SchedulerID{ID: id})
	return r.Cids, err
}

// SchedulerCmask reads a cmask in a scheduler's arena.
func (a Agent) SchedulerCmask(ctx context.Context, id int, addr uint64) ([]int, error) {
	r, err := call[Cids](ctx, a, MethodSchedulerCmask, ArenaCmask{ID: id, Addr: addr})
	return r.Cids, err
}

// AfterSpec reads the exits of the schedulers a spec loaded, resets the
// guest and reads the kernel's taint, in one call.
func (a Agent) AfterSpec(ctx context.Context, ids []int) (AfterSpec, error) {
	return call[AfterSpec](ctx, a, MethodAfterSpec, AfterSpecQuery{IDs: ids})
}

// Fault makes the agent misbehave on purpose (the fault matrix).
func (a Agent) Fault(ctx context.Context, f Fault) error {
	_, err := call[Empty](ctx, a, MethodFault, f)
	return err
}

// GcovReset zeroes the kernel's gcov counters (writes GcovRoot/reset): what
// runs after it is what the next GcovCollect reads.
func (a Agent) GcovReset(ctx context.Context) error {
	_, err := call[Empty](ctx, a, MethodGcovReset, Empty{})
	return err
}

// GcovCollect reads the kernel's .gcda files below dir, a directory below
// GcovRoot.
func (a Agent) GcovCollect(ctx context.Context, dir string) ([]GcovFile, error) {
	r, err := call[GcovData](ctx, a, MethodGcovCollect, GcovQuery{Dir: dir})
	return r.Files, err
}
