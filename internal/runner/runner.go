package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/scxcheck/scxcheck/outcome"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// SpecResult is one spec's outcome in one run.
type SpecResult struct {
	Text     string        `json:"text"`
	Labels   []string      `json:"labels,omitempty"`
	State    string        `json:"state"`
	Class    outcome.Class `json:"class,omitempty"`
	Failure  string        `json:"failure,omitempty"`
	Location string        `json:"location,omitempty"`
	RunTime  time.Duration `json:"runtime"`
}

// Failed reports whether the spec failed.
func (s SpecResult) Failed() bool { return s.Class != outcome.None }

// Run is one execution of the command.
type Run struct {
	Index    int           `json:"index"` // 1-based
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration"`
	Specs    []SpecResult  `json:"specs"`
	// Err says why the run did not complete (no report, killed); "" when it
	// did.
	Err string `json:"error,omitempty"`
}

// Complete reports whether the run tested the kernel: it exited 0 or 1 and
// left a report. A run that exited 2 or 3, was killed or left no report is
// an infrastructure run, whose specs do not count.
func (r Run) Complete() bool {
	return r.Err == "" && (r.ExitCode == outcome.ExitPass || r.ExitCode == outcome.ExitFail)
}

// Config describes repeated runs.
type Config struct {
	// Command is the program and arguments of one run, e.g.
	// {"/usr/bin/scxcheck", "run", "--label-filter=boot"}. Each run gets
	// --json-report=<Dir>/run-<i>.json appended.
	Command []string
	// PerRun, if set, returns more arguments for run i (1-based): its own
	// --artifacts directory, say.
	PerRun func(i int) []string
	// Runs is how many times to run; at least 1.
	Runs int
	// Dir receives the JSON reports.
	Dir string
	// Stdout and Stderr receive the runs' output; nil discards it.
	Stdout, Stderr io.Writer
	// Env is the runs' environment; nil means this process's.
	Env []string
	// Progress, if set, is called after each run.
	Progress func(Run)
	// Stop, if set, is asked after each run whether to stop early (e.g. a
	// bisect step that has seen its failure).
	Stop func(Run) bool
}

// Repeat runs the command cfg.Runs times, one after the other, and returns
// the runs. It stops early when ctx ends (the run under way is interrupted
// and reported with Err set) or cfg.Stop says so.
func Repeat(ctx context.Context, cfg Config) ([]Run, error) {
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("runner: %d runs: want at least 1", cfg.Runs)
	}
	if len(cfg.Command) == 0 {
		return nil, errors.New("runner: no command")
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	var runs []Run
	for i := 1; i <= cfg.Runs; i++ {
		r := runOnce(ctx, cfg, i)
		runs = append(runs, r)
		if cfg.Progress != nil {
			cfg.Progress(r)
		}
		if ctx.Err() != nil {
			return runs, ctx.Err()
		}
		if cfg.Stop != nil && cfg.Stop(r) {
			break
		}
	}
	return runs, nil
}

func runOnce(ctx context.Context, cfg Config, i int) Run {
	report := filepath.Join(cfg.Dir, fmt.Sprintf("run-%d.json", i))
	os.Remove(report)
	args := append([]string(nil), cfg.Command[1:]...)
	if cfg.PerRun != nil {
		args = append(args, cfg.PerRun(i)...)
	}
	args = append(args, "--json-report="+report)
	cmd := exec.CommandContext(ctx, cfg.Command[0], args...)
	cmd.Env = cfg.Env
	cmd.Stdout = orDiscard(cfg.Stdout)
	cmd.Stderr = orDiscard(cfg.Stderr)
	// On cancellation the run gets SIGINT, so that it shuts its VM down
	// and says so, then SIGKILL if it is still there.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	began := time.Now()
	err := cmd.Run()
	r := Run{Index: i, Duration: time.Since(began)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		r.ExitCode = ee.ExitCode()
	default:
		r.ExitCode = -1
		r.Err = fmt.Sprintf("run %d: %v", i, err)
		return r
	}
	specs, rerr := ReadReport(report)
	switch {
	case rerr != nil && r.Complete():
		r.Err = fmt.Sprintf("run %d exited %d without a readable report: %v", i, r.ExitCode, rerr)
	case rerr == nil:
		r.Specs = specs
	}
	if ctx.Err() != nil && r.Err == "" {
		r.Err = fmt.Sprintf("run %d interrupted", i)
	}
	return r
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// ReadReport reads a Ginkgo JSON report and returns the outcome of every
// spec that was selected to run.
func ReadReport(path string) ([]SpecResult, error) {
	specs, _, err := ReadReportWithTime(path)
	return specs, err
}

// ReadReportWithTime is ReadReport that also returns the suites' run time
// (the sum over the report's suites).
func ReadReportWithTime(path string) ([]SpecResult, time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, 0, fmt.Errorf("parse Ginkgo JSON report %s: %w", path, err)
	}
	var out []SpecResult
	var runTime time.Duration
	for _, rep := range reports {
		runTime += rep.RunTime
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			if s.State == types.SpecStateSkipped && s.Failure.Message == "" {
				continue // not selected
			}
			res := SpecResult{Text: s.FullText(), Labels: s.Labels(), State: s.State.String(), RunTime: s.RunTime}
			res.Class = outcome.Of(s)
			if res.Class != outcome.None || s.State == types.SpecStateSkipped {
				res.Failure = s.Failure.Message
			}
			if res.Class != outcome.None {
				res.Location = s.Failure.Location.String()
			}
			out = append(out, res)
		}
	}
	return out, runTime, nil
}
