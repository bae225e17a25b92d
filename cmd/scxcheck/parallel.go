package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/internal/ginkgopar"
	"github.com/scxcheck/scxcheck/vm"
)

// `scxcheck run --procs N` runs the suites as the ginkgo CLI runs `ginkgo
// -p`: this process serves Ginkgo's parallel protocol (internal/ginkgopar)
// and prints the specs' reports, and N child `scxcheck run` processes, one
// VM each, take the specs one at a time from its counter. A child learns
// its place from parallelChildEnv and writes its harness.Result to a file,
// which the parent merges into one summary.

// parallelChildEnv holds "<process>,<total>,<server address>,<result file>,<seed>"
// in a child of a parallel run. Every child must order the specs with the
// same random seed: the server hands out spec indices, and a child that
// shuffled differently would run another child's specs and skip its own.
const parallelChildEnv = "SCXCHECK_PARALLEL_CHILD"

// maxProcs bounds --procs: each process runs a VM.
const maxProcs = 16

// parallelChild is this process's place in a parallel run.
type parallelChild struct {
	proc, total int
	host        string
	result      string
	seed        int64
}

// parallelChildFromEnv returns this process's place in a parallel run, or
// nil when it is not a child of one.
func parallelChildFromEnv() (*parallelChild, error) {
	v := os.Getenv(parallelChildEnv)
	if v == "" {
		return nil, nil
	}
	f := strings.Split(v, ",")
	if len(f) != 5 {
		return nil, fmt.Errorf("%s=%q: want process,total,address,file,seed", parallelChildEnv, v)
	}
	c := &parallelChild{host: f[2], result: f[3]}
	var err1, err2, err3 error
	c.proc, err1 = strconv.Atoi(f[0])
	c.total, err2 = strconv.Atoi(f[1])
	c.seed, err3 = strconv.ParseInt(f[4], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || c.proc < 1 || c.proc > c.total {
		return nil, fmt.Errorf("%s=%q: bad process numbers", parallelChildEnv, v)
	}
	return c, nil
}

// configure makes the suite a Ginkgo parallel client. The child's output
// is not intercepted: its log lines go straight to the parent's stderr.
func (c *parallelChild) configure(s *types.SuiteConfig) {
	s.ParallelProcess, s.ParallelTotal, s.ParallelHost = c.proc, c.total, c.host
	s.RandomSeed = c.seed
	s.OutputInterceptorMode = "none"
}

// childResult is harness.Result as a child writes it for the parent.
type childResult struct {
	Passed, Failed, Skipped int
	SkipReasons             map[string]int
	Infra                   string
	BootTimes               []time.Duration
	Accel                   vm.Accel
	Release, API            string
}

// finish writes the child's result for the parent.
func (c *parallelChild) finish(res harness.Result) error { return writeResult(c.result, res) }

// writeResult writes a run's result as childResult JSON.
func writeResult(path string, res harness.Result) error {
	cr := childResult{Passed: res.Passed, Failed: res.Failed, Skipped: res.Skipped,
		SkipReasons: res.SkipReasons, BootTimes: res.BootTimes, Accel: res.Accel, Release: res.Release, API: res.API}
	if res.Infra != nil {
		cr.Infra = res.Infra.Error()
	}
	b, err := json.Marshal(cr)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write the run's result: %w", err)
	}
	return nil
}

// parallelFlags are the flags a parallel run handles itself.
var parallelFlags = map[string]bool{"procs": true, "repeat": true}

// runParallel runs the suites in procs child processes and merges their
// results; rc configures the report printed here.
func runParallel(ctx context.Context, fs *flag.FlagSet, t target, procs int, rc types.ReporterConfig, stdout, stderr io.Writer) error {
	img := t.img
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	dir, err := os.MkdirTemp("", "scxcheck-procs-")
	if err != nil {
		return infraError(err)
	}
	defer os.RemoveAll(dir)
	stdout, stderr = &syncWriter{w: stdout}, &syncWriter{w: stderr}
	srv, err := ginkgopar.NewServer(procs, reporters.NewDefaultReporter(rc, stdout), stdout)
	if err != nil {
		return infraError(fmt.Errorf("parallel run: %w", err))
	}
	srv.Start()
	defer srv.Close()

	fmt.Fprintf(stderr, "scxcheck: kernel %s, %d processes\n", img.Boot, procs)
	args := childRunArgs(fs, img.Boot, parallelFlags)
	seed := time.Now().Unix()
	var wg sync.WaitGroup
	exits := make([]error, procs)
	for p := 1; p <= procs; p++ {
		cmd := exec.Command(self, args...)
		cmd.Env = append(os.Environ(), ginkgopar.ClientEnv,
			fmt.Sprintf("%s=%d,%d,%s,%s,%d", parallelChildEnv, p, procs, srv.Address(), resultFile(dir, p), seed))
		out := &prefixWriter{w: stderr, prefix: fmt.Sprintf("[p%d] ", p)}
		cmd.Stdout, cmd.Stderr = out, out
		// Interrupted, the children get one SIGINT, from here: in their own
		// process group, a terminal's Ctrl-C does not reach them twice
		// (Ginkgo skips the cleanup on a second interrupt). They shut their
		// VMs down themselves.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return infraError(fmt.Errorf("parallel run: start process %d: %w", p, err))
		}
		done := make(chan struct{})
		srv.RegisterAlive(p, func() bool {
			select {
			case <-done:
				return false
			default:
				return true
			}
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			exits[p-1] = cmd.Wait()
			out.Flush()
			close(done)
		}()
		go func() {
			select {
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGINT)
			case <-done:
			}
		}()
	}
	wg.Wait()

	res := mergeResults(dir, exits)
	fmt.Fprint(stdout, res.Summary())
	fmt.Fprintf(stdout, "  %d processes\n", procs)
	return finishRun(ctx, res, t, rc.JUnitReport, stdout, stderr)
}

// resultExit is the exit of a run with result res: infrastructure before
// failure, as the kernel was not fully tested.
func resultExit(res harness.Result) error {
	switch {
	case res.Infra != nil:
		return infraError(res.Infra)
	case res.Failed > 0:
		return exitError{code: exitFail}
	case res.Passed == 0:
		return infraError(errNothingTested)
	}
	return nil
}

// errNothingTested ends a run in which no spec passed or failed: every
// selected spec skipped, or none was selected. That is not a pass.
var errNothingTested = errors.New("nothing was tested: every selected spec was skipped or none was selected (see the skip reasons above)")

func resultFile(dir string, proc int) string {
	return filepath.Join(dir, fmt.Sprintf("result-%d.json", proc))
}

// mergeResults adds up the children's results. A child that left none
// (it crashed or was killed) makes the run an infrastructure failure.
func mergeResults(dir string, exits []error) harness.Result {
	res := harness.Result{SkipReasons: map[string]int{}}
	var infra []error
	for i, exit := range exits {
		p := i + 1
		var cr childResult
		b, err := os.ReadFile(resultFile(dir, p))
		if err == nil {
			err = json.Unmarshal(b, &cr)
		}
		if err != nil {
			infra = append(infra, fmt.Errorf("process %d left no result (%v): %v", p, exit, err))
			continue
		}
		res.Passed += cr.Passed
		res.Failed += cr.Failed
		res.Skipped += cr.Skipped
		for k, n := range maps.All(cr.SkipReasons) {
			res.SkipReasons[k] += n
		}
		res.BootTimes = append(res.BootTimes, cr.BootTimes...)
		if res.Accel == "" {
			res.Accel = cr.Accel
		}
		if res.Release == "" {
			res.Release, res.API = cr.Release, cr.API
		}
		if cr.Infra != "" {
			infra = append(infra, fmt.Errorf("process %d: %s", p, cr.Infra))
		}
	}
	res.Infra = errors.Join(infra...)
	return res
}

// syncWriter serialises writes to w from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// prefixWriter writes whole lines to w, each with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

// Flush writes what is left of a last line without a newline.
func (p *prefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf)
		p.buf = nil
	}
}
