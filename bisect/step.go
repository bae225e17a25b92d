// Package bisect finds the kernel commit that broke a spec: it drives `git
// bisect run` over a kernel tree, each step building the commit, booting it
// and running the chosen specs N times.
//
// The bisection happens in a clone of the user's repository in scxcheck's
// cache (git clone --shared: it borrows the user's objects and writes
// nothing into the user's repository), so the user's HEAD, working tree,
// index, refs and worktree list are never touched — not even by Ctrl-C. The
// clone stays in the cache between bisections, so that checking out a
// commit changes only the files that differ and the kernel build is
// incremental.
//
// Building and testing are interfaces (Builder, Tester): the scxcheck
// command uses package kernel/build and `scxcheck run`; the tests use fakes
// over a synthetic history.
package bisect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/scxcheck/scxcheck/outcome"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
)

// Exit codes of a step, as `git bisect run` reads them.
const (
	ExitGood  = 0
	ExitBad   = 1
	ExitSkip  = 125
	ExitAbort = 128 // git bisect run stops: the step itself is broken
)

// Image is a built kernel.
type Image struct {
	Boot   string // the file QEMU boots
	Config string // its .config, "" if unknown
	// Digest identifies what the image runs (see Digest).
	Digest string
	Cached bool // taken from the build cache
}

// Builder builds the kernel of the tree checked out in dir.
type Builder interface {
	Build(ctx context.Context, dir string) (Image, error)
}

// Tester runs the chosen specs against an image up to runs times, in order,
// stopping early when stop says so.
type Tester interface {
	Test(ctx context.Context, img Image, runs int, logDir string, stop func(runner.Run) bool) ([]runner.Run, error)
}

// Verdict is a step's outcome.
type Verdict string

// Step verdicts.
const (
	Good Verdict = "good"
	Bad  Verdict = "bad"
	Skip Verdict = "skip"
)

// ExitCode is the verdict as git bisect run's exit code.
func (v Verdict) ExitCode() int {
	switch v {
	case Good:
		return ExitGood
	case Bad:
		return ExitBad
	}
	return ExitSkip
}

// Target is the assertion being bisected: the spec that fails at the bad
// revision and where it fails.
type Target struct {
	Spec     string        `json:"spec"`
	Location string        `json:"location"`
	Class    outcome.Class `json:"class"`
	Message  string        `json:"message"`
}

// Step is one tested commit.
type Step struct {
	Commit  string  `json:"commit"`
	Subject string  `json:"subject"`
	Verdict Verdict `json:"verdict"`
	// Reason says why, in one line: "3/3 runs passed", "run 2 failed ...",
	// "build failed: ...".
	Reason string `json:"reason"`
	// Runs are the runs made (fewer than asked when one failed early).
	Runs   []runner.Run  `json:"runs,omitempty"`
	Digest string        `json:"digest,omitempty"`
	Cached bool          `json:"cached,omitempty"`
	Build  time.Duration `json:"build"`
	Test   time.Duration `json:"test"`
	// Failure is the target's failure, when the step is bad; for the
	// validation of the bad revision, the failure that became the target.
	Failure *runner.Failure `json:"failure,omitempty"`
}

// Judge turns the runs of one commit into a verdict. With target nil (the
// bad revision, whose failure is not known yet) any failure of a selected
// spec is bad. Otherwise:
//
//   - bad: a complete run failed the target spec at the target's location;
//   - skip: a complete run failed the target spec elsewhere (it did not
//     reach the assertion), the spec was skipped, or a run did not complete
//     (infrastructure: no boot, QEMU died) and no run was bad;
//   - good: the target spec passed in every run. Failures of other specs
//     do not matter; the reason mentions them.
func Judge(runs []runner.Run, target *Target) (Verdict, string, *runner.Failure) {
	var passed, incomplete int
	var other []string
	var skipReason string
	for _, r := range runs {
		if !r.Complete() {
			incomplete++
			continue
		}
		for _, s := range r.Specs {
			f := &runner.Failure{Run: r.Index, Class: s.Class, Message: s.Failure, Location: s.Location}
			switch {
			case target == nil && s.Failed():
				return Bad, fmt.Sprintf("run %d: %s failed (%s) at %s", r.Index, s.Text, s.Class, s.Location), withSpec(f, s.Text)
			case target == nil:
			case s.Text != target.Spec:
				if s.Failed() {
					other = append(other, s.Text)
				}
			case s.Failed() && s.Location == target.Location:
				return Bad, fmt.Sprintf("run %d failed the assertion at %s", r.Index, s.Location), withSpec(f, s.Text)
			case s.Failed():
				return Skip, fmt.Sprintf("run %d failed the spec differently (%s at %s: %s): cannot tell", r.Index, s.Class, s.Location, firstLine(s.Failure)), nil
			case s.State == "passed":
				passed++
			default:
				skipReason = fmt.Sprintf("the spec was %s: %s", s.State, firstLine(s.Failure))
			}
		}
	}
	complete := len(runs) - incomplete
	switch {
	case skipReason != "":
		return Skip, skipReason, nil
	case incomplete > 0:
		return Skip, fmt.Sprintf("%d of %d runs did not complete (infrastructure): %s", incomplete, len(runs), runsWhy(runs)), nil
	case target != nil && passed < complete:
		return Skip, "the spec did not run (check --focus and --label-filter)", nil
	}
	reason := fmt.Sprintf("%d/%d runs passed", complete, len(runs))
	if target != nil {
		reason = fmt.Sprintf("%d/%d runs passed the spec", passed, len(runs))
	}
	if len(other) > 0 {
		reason += fmt.Sprintf(" (other specs failed: %s)", strings.Join(dedupe(other), "; "))
	}
	return Good, reason, nil
}

func withSpec(f *runner.Failure, spec string) *runner.Failure {
	f.Message = spec + "\n" + f.Message
	return f
}

func runsWhy(runs []runner.Run) string {
	var why []string
	for _, r := range runs {
		if !r.Complete() {
			if r.Err != "" {
				why = append(why, r.Err)
			} else {
				why = append(why, fmt.Sprintf("run %d exited %d", r.Index, r.ExitCode))
			}
		}
	}
	return strings.Join(why, "; ")
}

// TestCommit builds the commit checked out in dir and tests it: the body
// of a bisect step, also used to check the good and bad revisions. A build
// that fails (make, a config symbol dropped, a patch that does not apply,
// a missing tool) is a skip, as are runs that did not complete.
func TestCommit(ctx context.Context, dir string, b Builder, t Tester, runs int, logDir string, target *Target) Step {
	var s Step
	s.Commit, s.Subject = head(ctx, dir)
	began := time.Now()
	img, err := b.Build(ctx, dir)
	s.Build = time.Since(began)
	if err != nil {
		s.Verdict, s.Reason = Skip, "build: "+firstLine(err.Error())
		return s
	}
	s.Digest, s.Cached = img.Digest, img.Cached
	stop := func(r runner.Run) bool {
		v, _, _ := Judge([]runner.Run{r}, target)
		return v == Bad // one bad run decides the commit
	}
	began = time.Now()
	s.Runs, err = t.Test(ctx, img, runs, filepath.Join(logDir, short(s.Commit)), stop)
	s.Test = time.Since(began)
	if err != nil && len(s.Runs) == 0 {
		s.Verdict, s.Reason = Skip, "test: "+firstLine(err.Error())
		return s
	}
	s.Verdict, s.Reason, s.Failure = Judge(s.Runs, target)
	if ctx.Err() != nil && s.Verdict != Bad {
		s.Verdict, s.Reason = Skip, "interrupted"
	}
	return s
}

// state is what the driver hands the step processes, in <StateDir>/state.json.
type state struct {
	Clone  string   `json:"clone"`
	Runs   int      `json:"runs"`
	Target Target   `json:"target"`
	Args   []string `json:"args"` // the bisect command's own arguments, for the step to set itself up alike
	Cwd    string   `json:"cwd"`  // where they were given (relative paths)
}

const (
	stateFile = "state.json"
	stepsFile = "steps.jsonl"
)

// StepArgs returns the arguments the step process is to configure itself
// with (the bisect command's own) and the directory they were given in,
// from the state directory.
func StepArgs(stateDir string) (args []string, cwd string, err error) {
	st, err := readState(stateDir)
	if err != nil {
		return nil, "", err
	}
	return st.Args, st.Cwd, nil
}

func readState(dir string) (state, error) {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, fmt.Errorf("bisect step: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("bisect step: %s: %w", stateFile, err)
	}
	return st, nil
}

// RunStep is a bisect step, in the process git bisect run starts: it tests
// the commit checked out in the clone, records the step in the state
// directory and returns git's exit code (ExitAbort when the state is
// unreadable: the bisection cannot go on).
func RunStep(ctx context.Context, stateDir string, b Builder, t Tester) int {
	st, err := readState(stateDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitAbort
	}
	s := TestCommit(ctx, st.Clone, b, t, st.Runs, filepath.Join(stateDir, "runs"), &st.Target)
	if err := appendStep(stateDir, s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return ExitAbort
	}
	fmt.Fprintf(os.Stderr, "scxcheck bisect: %s %s: %s: %s\n", short(s.Commit), s.Subject, s.Verdict, s.Reason)
	if ctx.Err() != nil {
		return ExitAbort // interrupted: stop the bisection
	}
	return s.Verdict.ExitCode()
}

func appendStep(dir string, s Step) error {
	f, err := os.OpenFile(filepath.Join(dir, stepsFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("bisect step: %w", err)
	}
	defer f.Close()
	b, _ := json.Marshal(s)
	_, err = f.Write(append(b, '\n'))
	return err
}

func readSteps(dir string) ([]Step, error) {
	b, err := os.ReadFile(filepath.Join(dir, stepsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Step
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l == "" {
			continue
		}
		var s Step
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			return nil, fmt.Errorf("%s: %w", stepsFile, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
