// Package sched loads scxcheck's fixture schedulers (package fixtures) into
// the kernel with cilium/ebpf and attaches them as sched_ext root schedulers
// or cgroup sub-schedulers. It runs inside the test VM (the guest agent);
// everything up to the kernel calls (Prepare, enum filling, exit-info and
// counter decoding) is host-testable. Trace lines are parsed by package
// results.
//
// A fixture is loaded in three steps: Prepare copies the CollectionSpec and
// writes the Options into it (ops.name, timeout_ms, flags, sub_cgroup_id in
// the struct_ops value bytes; rodata knobs; the instance name traces carry;
// kernel enum constants), Load creates the whole collection (maps and every
// struct_ops program, then fills the struct_ops map), and Attach creates the
// struct_ops link that enables the scheduler.
package sched

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Names of variables and struct_ops members the loader relies on.
const (
	// InstanceNameVar is the rodata char array the fixtures print as the
	// scheduler name in trace lines; Prepare fills it from the ops name.
	InstanceNameVar = "instance_name"
	// EnumVarPrefix marks rodata variables filled from kernel enums: a
	// variable "__SCX_FOO" gets the value of the kernel's enumerator "SCX_FOO".
	EnumVarPrefix = "__SCX_"
	// ExitInfoVar is the .data record the fixtures' ops.exit fills.
	ExitInfoVar = "exit_info"

	// MaxNameLen is the longest ops.name the kernel accepts
	// (SCX_OPS_NAME_LEN - 1).
	MaxNameLen = 127
)

// Options are the per-instance settings written into a fixture before load.
type Options struct {
	// Name is ops.name, at most MaxNameLen characters of [A-Za-z0-9_.] (the
	// kernel copies it with bpf_obj_name_cpy, which refuses anything else).
	// Empty keeps the fixture's own name. It is also the instance name in
	// trace lines (truncated to the fixture's instance_name buffer).
	Name string
	// TimeoutMs is ops.timeout_ms; 0 means the kernel default (30 s, also the
	// maximum: larger values make the load fail with E2BIG).
	TimeoutMs uint32
	// Flags is ops.flags (SCX_OPS_*), written as given.
	Flags uint64
	// SubCgroupID is ops.sub_cgroup_id: 0 loads a root scheduler, otherwise
	// the inode number of the cgroup2 directory the sub-scheduler attaches to.
	SubCgroupID uint64
	// Knobs sets rodata knobs by variable name; see each fixture's header
	// comment. Unknown names, non-rodata variables and values that do not fit
	// the variable are errors.
	Knobs map[string]uint64
	// Members sets other integer members of the ops struct by name, e.g.
	// rescue_bandwidth_ppt (Linux 7.3). A non-zero value for a member the
	// running kernel lacks is a *MissingMemberError.
	Members map[string]uint64
}

// Scheduler is a loaded fixture instance.
type Scheduler struct {
	name    string
	opts    Options
	spec    *ebpf.CollectionSpec // as prepared and loaded
	coll    *ebpf.Collection
	opsName string // name of the struct_ops map
	opsType string // sched_ext_ops or sched_ext_ops_cid
	lnk     link.Link
	kinds   map[int64]string // scx_exit_kind values by number
}

// Load prepares spec with opts (see Prepare) and loads the whole collection
// into the kernel. kernel must be the running kernel's BTF; nil loads it with
// btf.LoadKernelSpec. It is used for the enum constants and exit kind names;
// CO-RE, kfuncs and the struct_ops value type are resolved by cilium/ebpf
// against the running kernel as usual.
//
// A verifier rejection returns an error from which errors.As extracts an
// *ebpf.VerifierError; formatting the returned error with %+v prints the
// complete verifier log.
func Load(spec *ebpf.CollectionSpec, kernel *btf.Spec, opts Options) (*Scheduler, error) {
	if kernel == nil {
		var err error
		if kernel, err = btf.LoadKernelSpec(); err != nil {
			return nil, fmt.Errorf("sched: loading kernel BTF: %w", err)
		}
	}

	prepared, err := Prepare(spec, kernel, opts)
	if err != nil {
		return nil, err
	}
	opsName, opsType, err := structOpsMap(prepared)
	if err != nil {
		return nil, err
	}
	name := opsNameOf(prepared, opsName)

	kinds, err := exitKinds(kernel)
	if err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}

	coll, err := ebpf.NewCollectionWithOptions(prepared, ebpf.CollectionOptions{})
	if err != nil {
		return nil, &LoadError{Name: name, Err: err}
	}
	if coll.Maps[opsName] == nil {
		coll.Close()
		return nil, fmt.Errorf("sched: load %q: struct_ops map %s missing from the collection", name, opsName)
	}

	return &Scheduler{
		name:    name,
		opts:    opts,
		spec:    prepared,
		coll:    coll,
		opsName: opsName,
		opsType: opsType,
		kinds:   kinds,
	}, nil
}

// LoadError is returned by Load when the kernel refuses the collection.
type LoadError struct {
	Name string // ops name of the scheduler
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("sched: load %q: %v", e.Name, e.Err) }

func (e *LoadError) Unwrap() error { return e.Err }

// Format prints the complete verifier log for %+v when there is one.
func (e *LoadError) Format(f fmt.State, verb rune) {
	var ve *ebpf.VerifierError
	if verb == 'v' && f.Flag('+') && errors.As(e.Err, &ve) {
		fmt.Fprintf(f, "%s\nverifier log:\n%+v", e.Error(), ve)
		return
	}
	io.WriteString(f, e.Error())
}

// Name returns the scheduler's ops name.
func (s *Scheduler) Name() string { return s.name }

// Options returns the options the scheduler was loaded with.
func (s *Scheduler) Options() Options { return s.opts }

// Collection returns the loaded collection (maps, programs, variables).
func (s *Scheduler) Collection() *ebpf.Collection { return s.coll }

// OpsType returns the struct_ops type: "sched_ext_ops_cid" or "sched_ext_ops".
func (s *Scheduler) OpsType() string { return s.opsType }

// Attached reports whether the struct_ops link exists.
func (s *Scheduler) Attached() bool { return s.lnk != nil }

func (s *Scheduler) where() string {
	if s.opts.SubCgroupID == 0 {
		return "as the root scheduler"
	}
	return fmt.Sprintf("as a sub-scheduler on cgroup id %d", s.opts.SubCgroupID)
}

// attachHints explains the link-create errnos sched_ext returns.
var attachHints = map[syscall.Errno]string{
	unix.ENODEV:     "no root scheduler is loaded",
	unix.EBUSY:      "a scheduler is already attached there",
	unix.EOPNOTSUPP: "the parent scheduler lacks sub_attach",
	unix.ENOENT:     "the id is not a cgroup2 cgroup",
	unix.EINVAL:     "invalid ops, e.g. a cid-form scheduler without an arena map (see the kernel log)",
}

// Attach creates the struct_ops link, which enables the scheduler. Only
// link-create failures are errors (see attachHints); every other enable
// failure is reported by the kernel as success here and arrives as exit
// info (Exit).
func (s *Scheduler) Attach() error {
	if s.coll == nil {
		return fmt.Errorf("sched: attach %q: scheduler is closed", s.name)
	}
	if s.lnk != nil {
		return fmt.Errorf("sched: attach %q: already attached", s.name)
	}
	l, err := link.AttachStructOps(link.StructOpsOptions{Map: s.coll.Maps[s.opsName]})
	if err != nil {
		return s.attachError(err)
	}
	s.lnk = l
	return nil
}

func (s *Scheduler) attachError(err error) error {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return fmt.Errorf("sched: attach %q (%s map %s) %s: %w", s.name, s.opsType, s.opsName, s.where(), err)
	}
	name := unix.ErrnoName(errno)
	if errno == unix.EOPNOTSUPP {
		name = "EOPNOTSUPP" // the kernel's name for it; ErrnoName says ENOTSUP
	}
	if name == "" {
		name = fmt.Sprintf("errno %d", int(errno))
	}
	if hint := attachHints[errno]; hint != "" {
		name += " (" + hint + ")"
	}
	return fmt.Errorf("sched: attach %q (%s map %s) %s: %s: %w", s.name, s.opsType, s.opsName, s.where(), name, err)
}

// Detach closes the struct_ops link, which unregisters the scheduler (exit
// kind SCX_EXIT_UNREG if it was still running). Detaching a scheduler that
// is not attached is a no-op. Counters and exit info stay readable.
func (s *Scheduler) Detach() error {
	if s.lnk == nil {
		return nil
	}
	err := s.lnk.Close()
	s.lnk = nil
	if err != nil {
		return fmt.Errorf("sched: detach %q: %w", s.name, err)
	}
	return nil
}

// Close detaches the scheduler and releases its maps and programs.
func (s *Scheduler) Close() error {
	err := s.Detach()
	if s.coll != nil {
		s.coll.Close()
		s.coll = nil
	}
	return err
}

// DispatchPrograms returns the loaded programs attached to the ops.dispatch
// member, by program name (one per fixture with a dispatch callback). Their
// Stats() carry bpf_prog_info.recursion_misses.
func (s *Scheduler) DispatchPrograms() map[string]*ebpf.Program {
	progs := make(map[string]*ebpf.Program)
	if s.coll == nil {
		return progs
	}
	for name, ps := range s.spec.Programs {
		if strings.HasSuffix(ps.AttachTo, ":dispatch") {
			if p := s.coll.Programs[name]; p != nil {
				progs[name] = p
			}
		}
	}
	return progs
}

// RecursionMisses sums bpf_prog_info.recursion_misses over the dispatch
// programs: how often the private-stack recursion guard skipped a nested
// call of the same dispatch program.
func (s *Scheduler) RecursionMisses() (uint64, error) {
	var total uint64
	for name, p := range s.DispatchPrograms() {
		st, err := p.Stats()
		if err != nil {
			return 0, fmt.Errorf("sched: %q: stats of %s: %w", s.name, name, err)
		}
		total += st.RecursionMisses
	}
	return total, nil
}
