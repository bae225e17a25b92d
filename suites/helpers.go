package suites

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/harness"
	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
)

// The specs' vocabulary: loading schedulers, cgroups and workloads, and the
// checks every label shares. Each helper takes the spec's context (a spec's
// SpecTimeout then cancels the call in flight) and fails the spec with a
// message saying what it was doing.

type (
	Sched    = harness.Sched
	Cgroup   = harness.Cgroup
	Workload = harness.Workload
)

// Timeouts for waiting on the kernel under TCG: enable and exit take a few
// hundred milliseconds; a second of workload takes a few seconds.
const (
	settle   = 10 * time.Second
	workTime = 1 * time.Second
	workWait = 30 * time.Second
	// longWork outlasts any spec: its workers are killed by the reset
	// after it.
	longWork = 5 * time.Minute
)

// stateFile is sched_ext's global state in sysfs.
const stateFile = "/sys/kernel/sched_ext/state"

func requireKernel(items ...string) { h.RequireKernel(items...) }
func requireGeneration(name string) { h.RequireGeneration(name) }

// classed is harness.Classed: a Gomega whose failures carry class c.
func classed(c outcome.Class) Gomega { return harness.Classed(c) }

// must returns a value or fails the spec.
func must[T any](ctx context.Context, f func(context.Context) (T, error)) T {
	GinkgoHelper()
	v, err := f(ctx)
	Expect(err).NotTo(HaveOccurred())
	return v
}

// read returns a guest file's contents, failing the spec if it cannot.
func read(ctx context.Context, path string) string {
	GinkgoHelper()
	s, err := guest().ReadString(ctx, path)
	Expect(err).NotTo(HaveOccurred(), "read %s", path)
	return s
}

// readFn returns a function for Eventually(ctx, ...) reading a guest file.
func readFn(path string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return guest().ReadString(ctx, path) }
}

// write writes to a guest file (sysfs, procfs, cgroupfs), failing the spec
// if it cannot.
func write(ctx context.Context, path, data string) {
	GinkgoHelper()
	Expect(guest().WriteString(ctx, path, data)).To(Succeed(), "write %q to %s", data, path)
}

// loadWith loads a fixture as req says and waits for the kernel to enable
// it (req.Cgroup "" for the root).
func loadWith(ctx context.Context, req proto.LoadScheduler) *Sched {
	GinkgoHelper()
	s, err := h.Load(ctx, req)
	Expect(err).NotTo(HaveOccurred(), "load %s", req.Name)
	what := "scheduler"
	if req.Cgroup != "" {
		what = "sub-scheduler"
	}
	Eventually(guest().KernelLog, settle).Should(HaveLogged(fmt.Sprintf(`BPF %s "%s" enabled`, what, req.Name)))
	return s
}

// load loads a fixture without waiting for anything: for loads the kernel
// may refuse.
func load(ctx context.Context, req proto.LoadScheduler) (*Sched, error) { return h.Load(ctx, req) }

// loadRoot loads the parent fixture as the root scheduler.
func loadRoot(ctx context.Context, name string, knobs map[string]uint64) *Sched {
	GinkgoHelper()
	return loadWith(ctx, proto.LoadScheduler{Fixture: "parent", Name: name, Knobs: knobs})
}

// loadSub loads a fixture as a sub-scheduler of a cgroup and waits for the
// kernel to enable it.
func loadSub(ctx context.Context, fixture, name string, cg Cgroup, knobs map[string]uint64) *Sched {
	GinkgoHelper()
	return loadWith(ctx, proto.LoadScheduler{Fixture: fixture, Name: name, Cgroup: cg.Path, Knobs: knobs})
}

func newCgroup(ctx context.Context, name string) Cgroup {
	GinkgoHelper()
	cg, err := guest().NewCgroup(ctx, name)
	Expect(err).NotTo(HaveOccurred(), "make cgroup %s", name)
	return cg
}

func removeCgroup(ctx context.Context, cg Cgroup) {
	GinkgoHelper()
	Expect(guest().RemoveCgroup(ctx, cg)).To(Succeed(), "remove cgroup %s", cg.Path)
}

// start starts n workers of a kind in a cgroup (Cgroup{} for the root) for d.
func start(ctx context.Context, cg Cgroup, kind string, n int, d time.Duration) *Workload {
	GinkgoHelper()
	return startWith(ctx, proto.Workload{Cgroup: cg.Path, Kind: kind, Count: n, Duration: d})
}

func startWith(ctx context.Context, req proto.Workload) *Workload {
	GinkgoHelper()
	w, err := guest().Start(ctx, req)
	Expect(err).NotTo(HaveOccurred(), "start workload %+v", req)
	return w
}

// finish waits for a workload and expects every worker to have exited cleanly.
func finish(ctx context.Context, w *Workload) {
	GinkgoHelper()
	finishWithin(ctx, w, workWait)
}

// finishWithin is finish with a bound of its own, for workloads whose
// scheduler runs them slowly on purpose.
func finishWithin(ctx context.Context, w *Workload, bound time.Duration) {
	GinkgoHelper()
	done, err := w.Wait(ctx, bound)
	Expect(err).NotTo(HaveOccurred())
	Expect(done.Done).To(BeTrue(), "workload %d still running after %s: %+v", w.ID, bound, done)
	Expect(done.Failed).To(BeEmpty())
}

// stillRunning checks that a scheduler runs, in its own view (no exit info)
// and the kernel's (sched_ext enabled, its sysfs directory there with its
// name, no line in the kernel log saying it was disabled). A failure is of
// class exit: the kernel took down a scheduler it should have kept.
func stillRunning(ctx context.Context, s *Sched) {
	GinkgoHelper()
	g := classed(outcome.Exit)
	g.Expect(s.Exit(ctx)).To(HaveField("Kind", BeZero()), "%s exited", s.Name)
	g.Expect(guest().ReadString(ctx, stateFile)).To(Equal("enabled\n"), "sched_ext state while %s should run", s.Name)
	dir, err := s.SysfsDir(ctx)
	g.Expect(err).NotTo(HaveOccurred(), "the kernel shows no directory for %s", s.Name)
	g.Expect(guest().ReadString(ctx, dir+"/ops")).To(Equal(s.Name+"\n"), "%s/ops", dir)
	g.Expect(s.LogSinceEnabled(guest().KernelLog())).NotTo(HaveLogged(s.DisabledLine()), "the kernel disabled %s", s.Name)
}

// exitsWith waits for a scheduler's exit and checks it (class exit).
func exitsWith(ctx context.Context, s *Sched, kind string, msg ...any) {
	GinkgoHelper()
	exitsWithin(ctx, settle, s, kind, msg...)
}

// exitsWithin is exitsWith with another bound, for watchdog exits.
func exitsWithin(ctx context.Context, d time.Duration, s *Sched, kind string, msg ...any) {
	GinkgoHelper()
	classed(outcome.Exit).Eventually(ctx, s.Exit, d).Should(ExitWith(kind, msg...), "exit of %s", s.Name)
}

// stallsWithin waits for a child's watchdog exit and checks the kernel's
// own account of the stall ("<comm>[<pid>] failed to run for S.MMMs"): at
// least the timeout the child asked for, and not wildly more. A watchdog
// that ignores the child's timeout_ms (and uses the 30 s default) or fires
// early is a bug the exit's arrival time alone would not show.
func stallsWithin(ctx context.Context, s *Sched, timeout time.Duration) {
	GinkgoHelper()
	// The watchdog checks every half timeout; allow for that and TCG.
	exitsWithin(ctx, 2*timeout+settle, s, "SCX_EXIT_ERROR_STALL", MatchRegexp(`\[\d+\] failed to run for \d+\.\d{3}s$`))
	stalled := stallSeconds(must(ctx, s.Exit).Msg)
	Expect(stalled).To(BeNumerically(">=", timeout.Seconds()), "the kernel declared %s stalled before its timeout_ms", s.Name)
	Expect(stalled).To(BeNumerically("<", 3*timeout.Seconds()), "the kernel declared %s stalled long after its timeout_ms", s.Name)
}

// stallSeconds reads the seconds from "<comm>[<pid>] failed to run for S.MMMs".
func stallSeconds(msg string) float64 {
	GinkgoHelper()
	i := strings.LastIndex(msg, " for ")
	Expect(i).To(BeNumerically(">=", 0), "stall message %q", msg)
	secs, err := strconv.ParseFloat(strings.TrimSuffix(msg[i+len(" for "):], "s"), 64)
	Expect(err).NotTo(HaveOccurred(), "stall message %q", msg)
	return secs
}

// detachedFrom waits for the parent's ops.sub_detach for the sub-scheduler
// on cg: the kernel owes it whatever way the child went, an error exit
// included.
func detachedFrom(ctx context.Context, parent *Sched, cg Cgroup) {
	GinkgoHelper()
	Eventually(ctx, guest().Trace, settle).Should(HaveTraced(parent.Name, "sub_detach", WithField("cgid", cg.ID)),
		"%s's ops.sub_detach for cgroup %s", parent.Name, cg.Rel)
}

// onFairClass checks that, with sched_ext gone, a workload still completes.
func onFairClass(ctx context.Context) {
	GinkgoHelper()
	Eventually(ctx, readFn(stateFile), settle).Should(Equal("disabled\n"))
	finish(ctx, start(ctx, Cgroup{}, proto.WorkSleep, 2, workTime/2))
}

// sysfsGone waits for a scheduler's sysfs directory to go away.
func sysfsGone(ctx context.Context, dir string) {
	GinkgoHelper()
	Eventually(ctx, func(ctx context.Context) error {
		_, err := guest().ReadString(ctx, dir+"/ops")
		return err
	}, settle).Should(HaveOccurred(), "%s is still there", dir)
}

// schedDir is the sysfs directory of the scheduler on the cgroup path ids
// (from the root's child down); no ids is the root's.
func schedDir(ids ...uint64) string {
	dir := harness.SysfsRoot
	for _, id := range ids {
		dir = path.Join(dir, "sub", fmt.Sprintf("sub-%d", id))
	}
	return dir
}

// ownerOf returns a function for Eventually: the ops name of the scheduler
// that owns pid in the kernel's view (task_struct.scx.sched, read with the
// owners task iterator), "" for none, or an error once the task is gone.
func ownerOf(pid int) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		o, err := guest().Owners(ctx, pid)
		if err != nil {
			return "", err
		}
		if len(o) != 1 || o[0].Gone {
			return "", fmt.Errorf("task %d is gone", pid)
		}
		return o[0].Sched, nil
	}
}

// ownedBy expects every task of a workload to be owned by the named
// scheduler and to be in the sched_ext class, in the kernel's view.
func ownedBy(ctx context.Context, w *Workload, name string) {
	GinkgoHelper()
	for _, pid := range w.PIDs {
		Eventually(ctx, ownerOf(pid), settle).Should(Equal(name), "owner of task %d", pid)
	}
	owners, err := guest().Owners(ctx, w.PIDs...)
	Expect(err).NotTo(HaveOccurred())
	for _, o := range owners {
		Expect(o.OnExt).To(BeTrue(), "task %d is not in the sched_ext class", o.PID)
	}
}

// runtimeOf returns a function for Eventually: the CPU time the kernel has
// accounted to a process, all its threads together (utime + stime of
// /proc/<pid>/stat, in clock ticks of 10 ms), in nanoseconds. Not
// /proc/<pid>/schedstat: that is the main thread's alone, and a Go worker's
// loop can run on any of its threads.
func runtimeOf(pid int) func(context.Context) (uint64, error) {
	return func(ctx context.Context) (uint64, error) {
		b, err := guest().ReadString(ctx, fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// Fields after the parenthesised command: state is field 3, utime
		// and stime are 14 and 15.
		i := strings.LastIndexByte(b, ')')
		if i < 0 {
			return 0, fmt.Errorf("/proc/%d/stat %q: no command", pid, b)
		}
		f := strings.Fields(b[i+1:])
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat %q: too short", pid, b)
		}
		utime, err1 := strconv.ParseUint(f[11], 10, 64)
		stime, err2 := strconv.ParseUint(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("/proc/%d/stat %q: utime/stime", pid, b)
		}
		return (utime + stime) * uint64(10*time.Millisecond), nil
	}
}

// keepsRunning expects every task of a workload to get CPU time from now on.
func keepsRunning(ctx context.Context, w *Workload) {
	GinkgoHelper()
	for _, pid := range w.PIDs {
		before := must(ctx, runtimeOf(pid))
		Eventually(ctx, runtimeOf(pid), settle).Should(BeNumerically(">", before+uint64(10*time.Millisecond)),
			"task %d got no CPU time", pid)
	}
}

// moveTo moves a task into a cgroup through its cgroup.procs file.
func moveTo(ctx context.Context, pid int, cg Cgroup) {
	GinkgoHelper()
	procs := path.Join(harness.CgroupRoot, "cgroup.procs")
	if cg.Path != "" {
		procs = path.Join(cg.Path, "cgroup.procs")
	}
	write(ctx, procs, strconv.Itoa(pid))
}

// firstEvent returns the earliest matching trace event (cgid 0: any).
func firstEvent(evs []results.TraceEvent, fixture, event string, cgid uint64) results.TraceEvent {
	GinkgoHelper()
	var match []results.TraceEvent
	for _, ev := range evs {
		if ev.Fixture == fixture && ev.Event == event && (cgid == 0 || ev.Field("cgid") == fmt.Sprint(cgid)) {
			match = append(match, ev)
		}
	}
	Expect(match).NotTo(BeEmpty(), "no %s %s event", fixture, event)
	sort.Slice(match, func(i, j int) bool { return match[i].Time < match[j].Time })
	return match[0]
}

// traceTime is the trace time of the first matching event.
func traceTime(fixture, event string, cgid uint64) float64 {
	GinkgoHelper()
	return firstEvent(guest().Trace(), fixture, event, cgid).Time
}

// readUint reads a guest file holding one unsigned number.
func readUint(ctx context.Context, path string) (uint64, error) {
	b, err := guest().ReadString(ctx, path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(b), 10, 64)
}
