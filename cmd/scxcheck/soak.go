package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/scxcheck/scxcheck/internal/runner"
)

const soakSummary = `Runs the suites N times back to back, each run a fresh 'scxcheck run' process
with the run flags given, and prints each run's wall time (min / median / max)
and every failure with its artifacts. A run that does not finish within its
--timeout (default 30m here) plus a grace period is stopped and counted as a hang.

Flags of its own:
  --runs N           how many runs (default 20)
  --artifacts DIR    where each run keeps its output, JUnit report and per-spec
                     artifacts, as DIR/run-<i>/ (default: a new scxcheck-soak-*
                     directory under $TMPDIR, kept and named at the end)
Every other flag is passed to each 'scxcheck run' (see 'scxcheck run --help').

Exit code: 0 when every run passed, 1 when a spec failed in some run, 3 when a
run hung or could not test the kernel.

Usage: scxcheck soak [--runs N] [--artifacts DIR] [run flags]
`

// soakDefaultTimeout is a run's --timeout unless the flags give one: a full
// default run takes about 4 minutes under TCG.
const soakDefaultTimeout = 30 * time.Minute

// soakGrace is how long past its --timeout a run may take to report and
// shut down before the soak kills it.
const soakGrace = 5 * time.Minute

// soakRun is one run of a soak.
type soakRun struct {
	runner.Run
	dir         string
	hang        bool // stopped at its deadline, or a spec timed out
	interrupted bool // the soak was interrupted during the run
}

func cmdSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	runs, artifacts, runArgs, err := soakArgs(args)
	if err != nil {
		return err
	}
	if runs == 0 {
		fmt.Fprint(stdout, soakSummary)
		return nil
	}
	timeout := soakDefaultTimeout
	if t, ok := flagValue(runArgs, "timeout"); ok {
		if timeout, err = time.ParseDuration(t); err != nil {
			return usageErrorf("soak: --timeout %q: %v", t, err)
		}
	} else {
		runArgs = append(runArgs, "--timeout="+timeout.String())
	}
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	ownDir := artifacts == ""
	if ownDir {
		if artifacts, err = os.MkdirTemp("", "scxcheck-soak-"); err != nil {
			return infraError(err)
		}
	}
	fmt.Fprintf(stderr, "scxcheck: soak: %d runs of scxcheck run %s; artifacts in %s\n", runs, strings.Join(runArgs, " "), artifacts)

	var done []soakRun
	for i := 1; i <= runs && ctx.Err() == nil; i++ {
		r := soakOnce(ctx, self, runArgs, artifacts, i, timeout+soakGrace)
		done = append(done, r)
		fmt.Fprintf(stderr, "scxcheck: run %d/%d: %s (%s)\n", i, runs, r.outcome(), r.Duration.Round(time.Second))
		if i == 1 && r.ExitCode == exitUsage {
			out, _ := os.ReadFile(filepath.Join(r.dir, "output.log"))
			if ownDir {
				os.RemoveAll(artifacts)
			}
			return usageErrorf("soak: the run flags were refused:\n%s", strings.TrimSpace(string(out)))
		}
	}
	fmt.Fprint(stdout, soakReport(done, runs))
	return soakExit(ctx, done)
}

// soakOnce runs `scxcheck run` once into dir/run-<i>, stopping it after
// limit.
func soakOnce(ctx context.Context, self string, runArgs []string, artifacts string, i int, limit time.Duration) soakRun {
	dir := filepath.Join(artifacts, fmt.Sprintf("run-%d", i))
	r := soakRun{dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.Index, r.ExitCode, r.Err = i, -1, err.Error()
		return r
	}
	out, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		r.Index, r.ExitCode, r.Err = i, -1, err.Error()
		return r
	}
	defer out.Close()
	w := &syncWriter{w: out}
	// The run shares our process group: a terminal's Ctrl-C reaches it
	// directly, and a second SIGINT from the runner would make Ginkgo skip
	// its cleanup. So an interrupt is passed on only if the run has not
	// ended a minute later (say, when only this process was signalled).
	rctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			select {
			case <-time.After(time.Minute):
				cancel()
			case <-rctx.Done():
			}
		case <-rctx.Done():
		}
	}()
	got, _ := runner.Repeat(rctx, runner.Config{
		Command: append([]string{self, "run"}, runArgs...),
		PerRun: func(int) []string {
			return []string{"--artifacts=" + dir, "--junit=" + filepath.Join(dir, "junit.xml")}
		},
		Runs: 1, Dir: dir, Stdout: w, Stderr: w,
	})
	if len(got) > 0 {
		r.Run = got[0]
	}
	r.Index = i
	r.hang = errors.Is(rctx.Err(), context.DeadlineExceeded)
	r.interrupted = ctx.Err() != nil
	for _, s := range r.Specs {
		if s.State == "timedout" {
			r.hang = true
		}
	}
	return r
}

func (r soakRun) failed() []runner.SpecResult {
	var f []runner.SpecResult
	for _, s := range r.Specs {
		if s.Failed() {
			f = append(f, s)
		}
	}
	return f
}

// outcome is a run in a few words.
func (r soakRun) outcome() string {
	passed, skipped := 0, 0
	for _, s := range r.Specs {
		switch s.State {
		case "passed":
			passed++
		case "skipped":
			skipped++
		}
	}
	counts := fmt.Sprintf("%d passed, %d failed, %d skipped", passed, len(r.failed()), skipped)
	switch {
	case r.interrupted:
		return "interrupted: " + counts
	case r.hang:
		return "HANG, stopped: " + counts
	case r.ExitCode == exitPass && r.Err == "":
		return "pass: " + counts
	case r.Complete():
		return "FAIL: " + counts
	}
	why := r.Err
	if why == "" {
		why = "exit " + strconv.Itoa(r.ExitCode)
	}
	return fmt.Sprintf("INFRASTRUCTURE (%s): %s", why, counts)
}

// soakReport is the closing summary: counts, wall times, every failure.
func soakReport(done []soakRun, asked int) string {
	var b strings.Builder
	var walls []time.Duration
	pass, fail, hang, infra, interrupted := 0, 0, 0, 0, 0
	for _, r := range done {
		if r.interrupted {
			interrupted++ // cut short: its wall time says nothing
			continue
		}
		walls = append(walls, r.Duration)
		switch {
		case r.hang:
			hang++
		case r.ExitCode == exitPass && r.Err == "":
			pass++
		case r.Complete():
			fail++
		default:
			infra++
		}
	}
	fmt.Fprintf(&b, "scxcheck soak: %d of %d runs: %d passed, %d failed, %d hung, %d infrastructure", len(done), asked, pass, fail, hang, infra)
	if interrupted > 0 {
		fmt.Fprintf(&b, ", %d interrupted", interrupted)
	}
	b.WriteString("\n")
	if len(walls) > 0 {
		slices.Sort(walls)
		fmt.Fprintf(&b, "  wall time per run: min %s, median %s, max %s\n",
			walls[0].Round(time.Second), median(walls).Round(time.Second), walls[len(walls)-1].Round(time.Second))
	}
	nfail := 0
	for _, r := range done {
		for _, s := range r.failed() {
			if nfail == 0 {
				fmt.Fprintf(&b, "failures:\n")
			}
			nfail++
			fmt.Fprintf(&b, "  run %d: [%s] %s\n      %s\n      artifacts: %s\n", r.Index, s.Class, s.Text,
				firstLineOf(s.Failure), filepath.Join(r.dir, harness.Slug(s.Text)))
		}
		if !r.Complete() || r.hang {
			if nfail == 0 {
				fmt.Fprintf(&b, "failures:\n")
			}
			nfail++
			fmt.Fprintf(&b, "  run %d: %s\n      output: %s\n", r.Index, r.outcome(), filepath.Join(r.dir, "output.log"))
		}
	}
	return b.String()
}

func soakExit(ctx context.Context, done []soakRun) error {
	code := exitPass
	for _, r := range done {
		switch {
		case r.hang || !r.Complete():
			code = exitInfra
		case r.ExitCode == exitFail && code == exitPass:
			code = exitFail
		}
	}
	if ctx.Err() != nil {
		return infraError(fmt.Errorf("soak interrupted after %d runs", len(done)))
	}
	if code == exitPass {
		return nil
	}
	return exitError{code: code}
}

func firstLineOf(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// soakArgs takes soak's own flags out of args; runs is 0 for --help.
func soakArgs(args []string) (runs int, artifacts string, rest []string, err error) {
	runs = 20
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			return 0, "", nil, usageErrorf("soak: unexpected argument %q (run 'scxcheck soak --help')", args[i])
		}
		switch name {
		case "h", "help":
			return 0, "", nil, nil
		case "runs", "artifacts":
			if !hasValue {
				if i+1 == len(args) {
					return 0, "", nil, usageErrorf("soak: --%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if name == "artifacts" {
				artifacts = value
				continue
			}
			if runs, err = strconv.Atoi(value); err != nil || runs < 1 {
				return 0, "", nil, usageErrorf("soak: --runs must be at least 1, not %q", value)
			}
		case "junit", "json-report", "repeat":
			return 0, "", nil, usageErrorf("soak: --%s is soak's to set for each run", name)
		default:
			rest = append(rest, args[i])
			// A value given as the next argument goes with its flag.
			if !hasValue && !runBoolFlags[name] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				rest = append(rest, args[i])
			}
		}
	}
	return runs, artifacts, rest, nil
}

// runBoolFlags are the flags of `scxcheck run` that take no value.
var runBoolFlags = map[string]bool{"v": true, "force": true}

// flagValue returns the value of --name in args given as --name=value or
// --name value.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		n, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if n != name || !strings.HasPrefix(a, "-") {
			continue
		}
		if ok {
			return v, true
		}
		if i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}
