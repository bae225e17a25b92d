package agent

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scxcheck/scxcheck/proto"
)

// workerArg0 is argv[0] of a worker process: the agent binary re-executed.
const workerArg0 = "scxcheck-worker"

// isWorker reports whether this process is a workload worker.
func isWorker() bool { return len(os.Args) == 3 && os.Args[0] == workerArg0 }

// workerMain runs one worker: args kind and duration.
func workerMain() {
	d, err := time.ParseDuration(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: %v\n", err)
		os.Exit(2)
	}
	end := time.Now().Add(d)
	switch os.Args[1] {
	case proto.WorkCPU:
		for time.Now().Before(end) {
			spin(time.Millisecond)
		}
	case proto.WorkSleep:
		for time.Now().Before(end) {
			spin(time.Millisecond)
			time.Sleep(time.Millisecond)
		}
	default:
		fmt.Fprintf(os.Stderr, "worker: unknown kind %q\n", os.Args[1])
		os.Exit(2)
	}
	os.Exit(0)
}

func spin(d time.Duration) {
	end := time.Now().Add(d)
	x := 0
	for time.Now().Before(end) {
		x++
	}
	_ = x
}

type workload struct {
	started time.Time
	pids    []int
	mu      sync.Mutex
	exited  int
	failed  []string
	last    time.Time
	done    chan struct{}
}

type workloads struct {
	mu   sync.Mutex
	next int
	all  map[int]*workload
}

func (w *workloads) start(req proto.Workload) (proto.WorkloadID, error) {
	if req.Count < 1 || req.Duration <= 0 {
		return proto.WorkloadID{}, fmt.Errorf("workload needs count ≥ 1 and a positive duration, got %d × %s", req.Count, req.Duration)
	}
	if req.Kind != proto.WorkCPU && req.Kind != proto.WorkSleep {
		return proto.WorkloadID{}, fmt.Errorf("unknown workload kind %q", req.Kind)
	}
	cg := req.Cgroup
	if cg == "" {
		cg = "/sys/fs/cgroup"
	}
	fd, err := unix.Open(cg, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return proto.WorkloadID{}, fmt.Errorf("open cgroup %s: %w", cg, err)
	}
	defer unix.Close(fd)
	self, err := os.Executable()
	if err != nil {
		return proto.WorkloadID{}, err
	}
	if len(req.CPUs) > 0 {
		// The workers inherit the affinity of the thread that forks them.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return proto.WorkloadID{}, fmt.Errorf("workload affinity: %w", err)
		}
		for _, c := range req.CPUs {
			set.Set(c)
		}
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return proto.WorkloadID{}, fmt.Errorf("workload affinity %v: %w", req.CPUs, err)
		}
		defer unix.SchedSetaffinity(0, &old)
	}
	wl := &workload{started: time.Now(), done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := 0; i < req.Count; i++ {
		cmd := &exec.Cmd{
			Path:        self,
			Args:        []string{workerArg0, req.Kind, req.Duration.String()},
			SysProcAttr: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd},
		}
		if err := cmd.Start(); err != nil {
			return proto.WorkloadID{}, fmt.Errorf("start worker %d in %s: %w", i, cg, err)
		}
		wl.pids = append(wl.pids, cmd.Process.Pid)
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			wl.mu.Lock()
			defer wl.mu.Unlock()
			if err != nil {
				wl.failed = append(wl.failed, fmt.Sprintf("worker %d: %v", cmd.Process.Pid, err))
			} else {
				wl.exited++
			}
			wl.last = time.Now()
		}()
	}
	go func() { wg.Wait(); close(wl.done) }()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.all == nil {
		w.all = map[int]*workload{}
	}
	w.next++
	w.all[w.next] = wl
	return proto.WorkloadID{ID: w.next, PIDs: wl.pids}, nil
}

func (w *workloads) wait(req proto.WaitWorkload) (proto.WorkloadDone, error) {
	w.mu.Lock()
	wl := w.all[req.ID]
	w.mu.Unlock()
	if wl == nil {
		return proto.WorkloadDone{}, fmt.Errorf("no workload %d", req.ID)
	}
	select {
	case <-wl.done:
	case <-time.After(req.Timeout):
	}
	wl.mu.Lock()
	defer wl.mu.Unlock()
	res := proto.WorkloadDone{Exited: wl.exited, Failed: append([]string(nil), wl.failed...)}
	select {
	case <-wl.done:
		res.Done = true
		res.Elapsed = wl.last.Sub(wl.started)
	default:
		res.Elapsed = time.Since(wl.started)
	}
	return res, nil
}

// kill stops every worker of every workload.
func (w *workloads) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, wl := range w.all {
		for _, pid := range wl.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// killAndReap kills every worker, waits up to timeout for them to be reaped,
// forgets the workloads and returns how many workers were still running.
func (w *workloads) killAndReap(timeout time.Duration) int {
	w.kill()
	w.mu.Lock()
	all := w.all
	w.all = nil
	w.mu.Unlock()
	running := 0
	deadline := time.After(timeout)
	for _, wl := range all {
		wl.mu.Lock()
		running += len(wl.pids) - wl.exited - len(wl.failed)
		wl.mu.Unlock()
		select {
		case <-wl.done:
		case <-deadline:
			return running
		}
	}
	return running
}
