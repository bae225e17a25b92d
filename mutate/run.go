package mutate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/outcome"
)

// Kernel is a kernel a Builder built.
type Kernel struct {
	// Image is the kernel to boot.
	Image string `json:"image"`
	// Cached is set when the build came from the cache.
	Cached bool `json:"cached,omitempty"`
}

// Builder builds the kernel with one mutant applied.
type Builder interface {
	// Build applies the mutant's diff to the tree under test and builds
	// it, leaving the tree as it was. A mutant that does not compile is
	// an error wrapping ErrStillborn; one whose diff does not apply, an
	// error wrapping ErrNotApplied. Any other error stops the run. log
	// receives the build's progress.
	Build(ctx context.Context, m Mutant, log io.Writer) (Kernel, error)
}

// Tester runs specs on a kernel.
type Tester interface {
	// Test runs the specs (Ginkgo full texts) on the kernel runs times,
	// keeping its logs in dir, and returns the runs (package runner's
	// verdict rule reads them). An error means it could not test.
	Test(ctx context.Context, k Kernel, specs []string, runs int, dir string) ([]runner.Run, error)
}

// ErrStillborn is wrapped by a Builder's error for a mutant that does not
// compile.
var ErrStillborn = errors.New("the mutant does not compile")

// ErrNotApplied is wrapped by a Builder's error for a mutant whose diff
// does not apply to the tree.
var ErrNotApplied = errors.New("the mutant's diff does not apply")

// Status is what became of a mutant.
type Status string

// The statuses of a mutant.
const (
	// Killed: a spec failed on it under the verdict rule, with a class
	// the kernel causes (anything but infra).
	Killed Status = "killed"
	// Survived: every spec that executed its line passed.
	Survived Status = "survived"
	// Unknown: no verdict; the specs failed only by infrastructure, did
	// not run, were skipped or flaky, or the diff did not apply.
	Unknown Status = "unknown"
	// Stillborn: it did not compile; reported, not counted.
	Stillborn Status = "stillborn"
)

// Kill is a spec that killed a mutant.
type Kill struct {
	Spec  string        `json:"spec"`
	Class outcome.Class `json:"class"`
	// Message is the first line of the failure.
	Message string `json:"message"`
}

// Result is a mutant's outcome.
type Result struct {
	Mutant Mutant `json:"mutant"`
	// Hash is the mutant's Hash when it ran: a result of another hash is
	// stale.
	Hash   string `json:"hash"`
	Status Status `json:"status"`
	// Kills are the specs that failed on it (Killed).
	Kills []Kill `json:"kills,omitempty"`
	// Reason says why it is Unknown or Stillborn.
	Reason string `json:"reason,omitempty"`
	// Specs are the verdicts of the specs that ran on it.
	Specs []runner.SpecStats `json:"specs,omitempty"`
	// Runs is how many times its specs ran (Config.Runs).
	Runs int `json:"runs"`
	// Build and Test are the wall times of its build and its runs.
	Build  time.Duration `json:"build"`
	Test   time.Duration `json:"test"`
	Cached bool          `json:"cached,omitempty"`
	// Dir holds its logs, relative to the state directory.
	Dir string `json:"dir"`
}

// Config describes a run.
type Config struct {
	// StateDir keeps every mutant's result and logs: a result there of
	// the same mutant is taken, not run again, so that an interrupted run
	// resumes where it stopped.
	StateDir string
	// Runs is how many times the specs run on each mutant (the verdict
	// rule of package runner); at least 1.
	Runs int
	// Budget stops the run once this much time has passed since Started
	// (0 = no budget; Started zero = when Run starts): the mutant under
	// way is abandoned (and runs again on resume), the rest are not run.
	Budget  time.Duration
	Started time.Time
	// Log receives a progress line per step (nil = none).
	Log io.Writer
}

// resultsDir holds one result file per mutant in the state directory.
const resultsDir = "results"

// key names a mutant's files in the state directory.
func key(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:8])
}

// Run builds and tests each selected mutant, in order, and returns the
// report. It stops early, with a partial report, when ctx ends
// (Report.Stopped says why) or the budget runs out; an error is a Builder
// failing for another reason than the mutant (the report is then partial
// too, and Report.Err says why).
func Run(ctx context.Context, cfg Config, sel *Selection, b Builder, t Tester) (*Report, error) {
	began := time.Now()
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("mutate: %d runs: want at least 1", cfg.Runs)
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, resultsDir), 0o755); err != nil {
		return nil, fmt.Errorf("mutate: state directory: %w", err)
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "scxcheck mutate: "+format+"\n", args...)
		}
	}
	rep := &Report{Selection: sel}
	runCtx := ctx
	if cfg.Budget > 0 {
		started := cfg.Started
		if started.IsZero() {
			started = began
		}
		var cancel context.CancelFunc
		runCtx, cancel = context.WithDeadline(ctx, started.Add(cfg.Budget))
		defer cancel()
	}
	stop := func() bool {
		switch {
		case ctx.Err() != nil:
			rep.Stopped = "interrupted"
		case runCtx.Err() != nil:
			rep.Stopped = fmt.Sprintf("--budget %s used up", cfg.Budget)
		default:
			return false
		}
		return true
	}
	var runErr error
	for i, m := range sel.Mutants {
		if stop() {
			rep.NotRun = append(rep.NotRun, sel.Mutants[i:]...)
			break
		}
		where := fmt.Sprintf("[%d/%d] %s (%s)", i+1, len(sel.Mutants), m.ID, m.Description)
		if r, ok := loadResult(cfg.StateDir, m, cfg.Runs); ok {
			logf("%s: %s, from an earlier run", where, r.Status)
			rep.Results = append(rep.Results, r)
			continue
		}
		r, err := runOne(runCtx, cfg, m, b, t, where, logf)
		if err != nil {
			if !stop() {
				rep.Err = err.Error()
				runErr = err
			}
			rep.NotRun = append(rep.NotRun, sel.Mutants[i:]...)
			break
		}
		if err := saveResult(cfg.StateDir, r); err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, r)
	}
	rep.Elapsed = time.Since(began)
	rep.count()
	return rep, runErr
}

// runOne builds and tests one mutant. An error means the run must stop
// (ctx ended, or the builder failed for another reason than the mutant).
func runOne(ctx context.Context, cfg Config, m Mutant, b Builder, t Tester, where string, logf func(string, ...any)) (Result, error) {
	r := Result{Mutant: m, Hash: m.Hash(), Runs: cfg.Runs, Dir: filepath.Join("mutants", key(m.ID))}
	dir := filepath.Join(cfg.StateDir, r.Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return r, fmt.Errorf("mutate: %w", err)
	}
	os.WriteFile(filepath.Join(dir, "mutant.patch"), []byte(m.Diff), 0o644)
	blog, err := os.Create(filepath.Join(dir, "build.log"))
	if err != nil {
		return r, fmt.Errorf("mutate: %w", err)
	}
	defer blog.Close()
	logf("%s: building", where)
	start := time.Now()
	k, err := b.Build(ctx, m, blog)
	r.Build, r.Cached = time.Since(start), k.Cached
	switch {
	case ctx.Err() != nil:
		return r, ctx.Err()
	case errors.Is(err, ErrStillborn):
		r.Status, r.Reason = Stillborn, firstLine(err.Error())
		logf("%s: stillborn (does not compile, %s): %s", where, round(r.Build), r.Reason)
		return r, nil
	case errors.Is(err, ErrNotApplied):
		r.Status, r.Reason = Unknown, firstLine(err.Error())
		logf("%s: unknown: %s", where, r.Reason)
		return r, nil
	case err != nil:
		return r, fmt.Errorf("build mutant %s: %w", m.ID, err)
	}
	how := "built"
	if k.Cached {
		how = "from the cache"
	}
	logf("%s: %s in %s; running %d spec(s) %d time(s)", where, how, round(r.Build), len(m.Specs), cfg.Runs)
	start = time.Now()
	runs, err := t.Test(ctx, k, m.Specs, cfg.Runs, filepath.Join(dir, "runs"))
	r.Test = time.Since(start)
	switch {
	case ctx.Err() != nil:
		return r, ctx.Err()
	case err != nil:
		r.Status, r.Reason = Unknown, "could not test: "+firstLine(err.Error())
	default:
		classify(&r, runs)
	}
	switch r.Status {
	case Killed:
		var by []string
		for _, k := range r.Kills {
			by = append(by, fmt.Sprintf("%q [%s]", k.Spec, k.Class))
		}
		logf("%s: killed by %s (%s)", where, strings.Join(by, ", "), round(r.Test))
	case Survived:
		logf("%s: SURVIVED %d spec(s) (%s)", where, len(m.Specs), round(r.Test))
	default:
		logf("%s: %s: %s (%s)", where, r.Status, r.Reason, round(r.Test))
	}
	return r, nil
}

// classify sets a tested mutant's status from its runs under the verdict
// rule (runner.Aggregate): killed when a spec fails (a failure of class
// infra does not count), survived when every spec passed in every
// complete run, unknown otherwise.
func classify(r *Result, runs []runner.Run) {
	sum := runner.Aggregate(runs)
	r.Specs = sum.Specs
	for _, st := range sum.Specs {
		if st.Verdict != runner.Fail {
			continue
		}
		k := Kill{Spec: st.Text, Class: outcome.None}
		for _, f := range st.Failures {
			if f.Class.MoreSevere(k.Class) {
				k.Class, k.Message = f.Class, firstLine(f.Message)
			}
		}
		r.Kills = append(r.Kills, k)
	}
	if len(r.Kills) > 0 {
		r.Status = Killed
		return
	}
	r.Status = Unknown
	if sum.Verdict == runner.Infra {
		r.Reason = sum.Reason
		return
	}
	byText := map[string]runner.SpecStats{}
	for _, st := range sum.Specs {
		byText[st.Text] = st
	}
	var why []string
	for _, spec := range r.Mutant.Specs {
		st, ok := byText[spec]
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("%q did not run", spec))
		case st.Verdict == runner.Pass:
		case st.Verdict == runner.Flaky:
			why = append(why, fmt.Sprintf("%q is flaky (passed %d of %d)", spec, st.Passed, st.Passed+st.Failed))
		case st.Runs == 0:
			why = append(why, fmt.Sprintf("%q failed only by infrastructure", spec))
		default:
			why = append(why, fmt.Sprintf("%q skipped: %s", spec, firstLine(st.SkipReason)))
		}
	}
	if len(why) > 0 {
		r.Reason = strings.Join(why, "; ")
		return
	}
	r.Status = Survived
}

// loadResult returns the result of an earlier run of the same mutant
// (same diff), with the same specs and runs; a stillborn one whatever
// they were.
func loadResult(stateDir string, m Mutant, runs int) (Result, bool) {
	data, err := os.ReadFile(filepath.Join(stateDir, resultsDir, key(m.ID)+".json"))
	if err != nil {
		return Result{}, false
	}
	var r Result
	if json.Unmarshal(data, &r) != nil || r.Hash != m.Hash() || r.Status == "" {
		return Result{}, false
	}
	if r.Status != Stillborn && (r.Runs != runs || !slices.Equal(r.Mutant.Specs, m.Specs)) {
		return Result{}, false
	}
	r.Mutant.Specs = m.Specs
	return r, true
}

func saveResult(stateDir string, r Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("mutate: %w", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(stateDir, resultsDir, key(r.Mutant.ID)+".json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("mutate: save result of %s: %w", r.Mutant.ID, err)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func round(d time.Duration) time.Duration { return d.Round(time.Second) }

// before orders mutants by file and line.
func before(a, b Mutant) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	return a.Line < b.Line
}

// sortMutants orders mutants by file and line, keeping the order of a
// line's mutants.
func sortMutants(ms []Mutant) {
	sort.SliceStable(ms, func(i, j int) bool { return before(ms[i], ms[j]) })
}

// sortResults orders results by their mutants' file and line.
func sortResults(rs []Result) {
	sort.SliceStable(rs, func(i, j int) bool { return before(rs[i].Mutant, rs[j].Mutant) })
}
