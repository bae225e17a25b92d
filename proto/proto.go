// Package proto defines the messages the host and the guest agent exchange.
//
// Two virtio-serial ports connect them. On the control port the agent serves
// typed calls (see Serve and Client): every request and reply is one of the
// structs below. On the events port the agent
// streams [Event] values, one JSON object per line, from boot to power-off:
// first a "ready" event, then every kernel log and trace_pipe line.
package proto

import (
	"fmt"
	"time"
)

// Names of the virtio-serial ports, as given to QEMU's virtserialport.
const (
	ControlPort = "scxcheck.ctl"
	EventsPort  = "scxcheck.events"
)

// Event kinds.
const (
	EventReady = "ready" // the agent is serving; Line holds its version
	EventKmsg  = "kmsg"  // a /dev/kmsg record
	EventTrace = "trace" // a trace_pipe line
	EventAgent = "agent" // a diagnostic from the agent itself
	// EventTimeline is a trace_pipe line for the run report's timelines
	// (TimelineParam): the timeline tracer's, a sched_ext
	// tracepoint's, a TimelineMarker. Streamed only when asked for.
	EventTimeline = "timeline"
)

// TimelineParam is the kernel command-line parameter (=1) that asks the
// agent for timeline events.
const TimelineParam = "scxcheck.timeline"

// TimelineMarker starts what the host writes into the guest's
// trace_marker where a spec begins and ends, on the trace clock.
const TimelineMarker = "scxcheck-spec "

// Event is one line streamed from the guest.
type Event struct {
	Kind string `json:"k"`
	// Time is the guest's CLOCK_MONOTONIC when the agent read the line
	// (kmsg: the record's own timestamp), in seconds since boot.
	Time float64 `json:"t"`
	// Level is the syslog level of a kmsg record (0 emerg … 7 debug).
	Level int    `json:"l,omitempty"`
	Line  string `json:"s"`
}

// Empty is the argument or reply of calls that carry nothing.
type Empty struct{}

// Hello is the reply to Agent.Hello: what the host needs to know of a
// guest that has just booted.
type Hello struct {
	Release string        // uname -r
	CPUs    int           // online CPUs
	Uptime  time.Duration // guest time since boot
	// Taint is /proc/sys/kernel/tainted.
	Taint string
	// Caps is what the capability probe found in the kernel.
	Caps Capabilities
}

// Path names a file in the guest.
type Path struct {
	Path string
}

// FileData is the contents of a guest file.
type FileData struct {
	Data []byte
}

// WriteFile asks the agent to write Data to Path (which must exist, as in
// sysfs or cgroupfs).
type WriteFile struct {
	Path string
	Data []byte
}

// DirEntries lists a guest directory.
type DirEntries struct {
	Names []string
}

// Capabilities is what the capability probe found in the guest kernel.
type Capabilities struct {
	// Have lists the items found, e.g. "kfunc scx_bpf_sub_dispatch".
	Have []string
	// Missing lists the items the probe looked for and did not find.
	Missing []string
	// ExitKinds maps enum scx_exit_kind names to values, from kernel BTF.
	ExitKinds map[string]int64
	// Unknown lists sub-scheduler items in the kernel's BTF that belong to
	// no API generation scxcheck knows (a kernel newer than scxcheck).
	Unknown []string
	// Err is why probing failed as a whole (no BTF, say); empty on success.
	Err string
}

// ExitInfo is a scheduler's exit record, as its exit callback stored it.
type ExitInfo struct {
	Kind int64
	// KindName is Kind's name in the kernel's enum scx_exit_kind, e.g.
	// "SCX_EXIT_ERROR"; "" when the kernel has no such value.
	KindName string
	ExitCode int64
	ExitCPU  int32
	Reason   string
	Msg      string
}

func (e ExitInfo) String() string {
	return fmt.Sprintf("kind=%s(%d) exit_code=%#x exit_cpu=%d reason=%q msg=%q", e.KindName, e.Kind, e.ExitCode, e.ExitCPU, e.Reason, e.Msg)
}

// Workload kinds.
const (
	WorkCPU   = "cpu"   // spin on the CPU for the whole duration
	WorkSleep = "sleep" // alternate ~1 ms of spinning with ~1 ms of sleep
)

// Workload asks the agent to start Count worker processes of one Kind inside
// a cgroup. Workers are placed with CLONE_INTO_CGROUP, so they are in the
// cgroup from their first instruction (a task moved in after a sub-scheduler
// attached would not belong to it).
type Workload struct {
	// Cgroup is the cgroup2 directory, e.g. /sys/fs/cgroup/t1; "" is the root.
	Cgroup   string
	Kind     string
	Count    int
	Duration time.Duration
	// CPUs, if not empty, is the workers' CPU affinity from their first
	// instruction.
	CPUs []int
}

// WorkloadID names a started workload.
type WorkloadID struct {
	ID   int
	PIDs []int
}

// WaitWorkload waits up to Timeout for a workload's workers to finish.
type WaitWorkload struct {
	ID      int
	Timeout time.Duration
}

// WorkloadDone reports on a workload.
type WorkloadDone struct {
	// Done is true once every worker has exited.
	Done bool
	// Exited counts the workers that finished; Failed says why others failed.
	Exited int
	Failed []string
	// Elapsed is the time from start to the last exit (or to now).
	Elapsed time.Duration
}

// CgroupID is a cgroup's id as the kernel knows it: its cgroup2 inode.
type CgroupID struct {
	ID uint64
}

// LoadScheduler asks the agent to load a fixture scheduler and, unless
// NoAttach, attach it: as the root scheduler when Cgroup is "", else as a
// sub-scheduler of that cgroup2 directory (its inode becomes sub_cgroup_id).
type LoadScheduler struct {
	Fixture string // a name from fixtures.Names()
	Name    string // ops.name, also the name the fixture traces under
	Cgroup  string // e.g. /sys/fs/cgroup/t1; "" for the root
	// CgroupID, if set, is used as sub_cgroup_id instead of Cgroup's inode:
	// for ids that name no cgroup.
	CgroupID  uint64
	TimeoutMs uint32
	Flags     uint64
	Knobs     map[string]uint64 // rodata knobs by variable name
	// Members sets integer ops members by name (e.g. rescue_bandwidth_ppt,
	// Linux 7.3); see sched.Options.Members.
	Members  map[string]uint64
	NoAttach bool
	// GrantCids, if not nil, is set as the parent fixture's grant mask
	// once it is attached (see GrantMask), before any child can attach;
	// GrantDenied collects the cids its sub_attach could not grant.
	GrantCids   []int
	GrantDenied bool
}

// SchedulerID names a loaded scheduler in later calls.
type SchedulerID struct {
	ID int
	// CgroupID is the sub_cgroup_id it was given (0 for the root).
	CgroupID uint64
}

// CountersQuery asks for a scheduler's counters: those in Names, or all.
type CountersQuery struct {
	ID    int
	Names []string
}

// Counters are a fixture's .bss counters by name.
type Counters struct {
	Values map[string]uint64
}

// ProgStat is one BPF program's bpf_prog_info statistics.
type ProgStat struct {
	Name            string
	RecursionMisses uint64
	RunCount        uint64
}

// ProgStats lists a scheduler's struct_ops programs.
type ProgStats struct {
	Progs []ProgStat
}

// GcovRoot is where a kernel with CONFIG_GCOV_KERNEL keeps its gcov data
// in debugfs: a .gcda file per profiled object, at the path of the object
// in the build directory below it, and the file reset.
const GcovRoot = "/sys/kernel/debug/gcov"

// GcovQuery names a directory below GcovRoot whose .gcda files to read, e.g.
// the build directory followed by kernel/sched.
type GcovQuery struct {
	Dir string
}

// GcovData is the kernel's gcov data below a directory: every .gcda file
// there and below, at its path relative to the directory.
type GcovData struct {
	Files []GcovFile
}

// GcovFile is one .gcda file.
type GcovFile struct {
	Path string // relative to GcovQuery.Dir, slash-separated
	Data []byte
}

// AfterSpecQuery lists the schedulers a spec loaded.
type AfterSpecQuery struct {
	IDs []int
}

// AfterSpec is what the host learns after a spec: the exits of its
// schedulers (read before the reset frees them), the reset, the taint.
type AfterSpec struct {
	// Exits holds, per queried id, the exit info or why it could not be read.
	Exits []ExitOrError
	Reset ResetReport
	// ResetErr says why the guest did not come back to a clean state; ""
	// when it did.
	ResetErr string
	// Taint is /proc/sys/kernel/tainted after the reset.
	Taint string
}

// ExitOrError is one scheduler's exit info, or why it was not read.
type ExitOrError struct {
	ID   int
	Exit *ExitInfo
	Err  string
}

// ResetReport says what the reset after a spec had to clean up.
type ResetReport struct {
	Detached []string // schedulers whose links were still open
	Removed  []string // cgroups removed
	Killed   int      // workers killed
	// State is /sys/kernel/sched_ext/state afterwards: "disabled" when clean.
	State string
}

// Operations of a Command: the capability kfuncs (Linux 7.3) and the
// scheduler's own exit or error.
const (
	CmdGrant  = 1 // scx_bpf_sub_grant(cgid, caps, cmask, denied)
	CmdRevoke = 2 // scx_bpf_sub_revoke(cgid, caps, cmask)
	CmdCaps   = 3 // scx_bpf_sub_caps(cgid, caps, out): 0 reads the scheduler itself
	CmdKill   = 4 // scx_bpf_sub_kill_bstr(cgid, "killed by scxcheck parent cgroup <cgid>")
	// Any kernel: the scheduler ends itself.
	CmdExit  = 5 // scx_bpf_exit(Caps, "scxcheck: exit on command, code <Caps>")
	CmdError = 6 // scx_bpf_error("scxcheck: error on command after <n> dispatches")
)

// Command asks the parent fixture ID to run one operation from its
// ops.dispatch (see the Cmd constants). The cmask argument of the capability
// kfuncs holds Cids, or is the kernel's online cmask when Online.
type Command struct {
	ID       int
	Op       int
	CgroupID uint64
	Caps     uint64
	Cids     []int
	Online   bool
	// Out asks for an out mask: the denied cids of a grant, the caps of a
	// read (always given for CmdCaps).
	Out     bool
	Timeout time.Duration
}

// CommandResult is a capability command's outcome.
type CommandResult struct {
	Ret int64 // the kfunc's return value (0 for revoke)
	Out []int // cids in the out mask
}

// Cids is a set of cids, sorted.
type Cids struct {
	Cids []int
}

// ArenaCmask names a cmask in a scheduler's arena by its address (as the
// fixture recorded it, e.g. caps_updated_cmask).
type ArenaCmask struct {
	ID   int
	Addr uint64
}

// TaskOwnersQuery asks which scheduler owns each of PIDs, in the kernel's
// view (task_struct.scx.sched, read with a BPF task iterator).
type TaskOwnersQuery struct {
	PIDs []int
}

// TaskOwner is one task's owner.
type TaskOwner struct {
	PID int
	// Sched is the owning scheduler's ops name, "" when none owns it.
	Sched string
	// CgroupID is the owner's cgroup id: 1 for the root scheduler.
	CgroupID uint64
	// Level is the owner's depth: 0 for the root, -1 for none.
	Level int
	// OnExt is /proc/<pid>/sched's ext.enabled: the task is in the
	// sched_ext class right now.
	OnExt bool
	// Gone is set when the task no longer exists.
	Gone bool
}

// TaskOwners answers TaskOwnersQuery, in the order asked.
type TaskOwners struct {
	Owners []TaskOwner
}
