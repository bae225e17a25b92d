package bisect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// Config describes a bisection.
type Config struct {
	// Tree is the user's kernel repository; Good and Bad are revisions in it.
	Tree, Good, Bad string
	// Runs is how many times each commit is tested; one failing run makes it
	// bad.
	Runs int
	// CloneDir is where the shared clone lives (kept between bisections).
	CloneDir string
	// StateDir receives the state, the steps and the runs' logs.
	StateDir string
	// StepCommand is the program and arguments of a step; "--state
	// <StateDir>" is appended. It must end up in RunStep.
	StepCommand []string
	// Args are recorded in the state for the step process (StepArgs).
	Args []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// ErrInput wraps errors about the user's input: no git repository, an
// unknown revision, good not an ancestor of bad, a bad revision that passes.
var ErrInput = errors.New("bisect")

// ErrInfra wraps errors that stopped the bisection for another reason.
var ErrInfra = errors.New("bisect infrastructure")

// Commit is a commit and its subject.
type Commit struct {
	SHA     string `json:"sha"`
	Subject string `json:"subject"`
}

// Report is the outcome of a bisection.
type Report struct {
	// Culprit is the first bad commit; nil when skipped commits left
	// several candidates (Candidates).
	Culprit    *Commit  `json:"culprit,omitempty"`
	Candidates []Commit `json:"candidates,omitempty"`
	Target     Target   `json:"target"`
	// Steps are every tested commit in order: the bad and good revisions
	// first, then git bisect's picks.
	Steps []Step `json:"steps"`
	// Warning is set when the culprit's image is identical to its
	// parent's: the commit does not change the kernel that ran, so the
	// failure is probably a flake, or lies outside the kernel image.
	Warning string        `json:"warning,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
}

// Run bisects: it prepares the clone, tests the bad revision (its failure
// becomes the target) and the good one, runs git bisect run with the step
// command, and reports. The user's repository is only read.
func Run(ctx context.Context, cfg Config, b Builder, t Tester) (*Report, error) {
	began := time.Now()
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "scxcheck bisect: "+format+"\n", args...)
		}
	}
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	good, bad, err := resolve(ctx, cfg.Tree, cfg.Good, cfg.Bad)
	if err != nil {
		return nil, err
	}
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	clone, err := prepareClone(ctx, cfg.Tree, cfg.CloneDir)
	if err != nil {
		return nil, err
	}
	// Whatever happens, the clone ends with no bisection in progress.
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := git(c, clone, "bisect", "reset"); err != nil {
			logf("reset the clone's bisection: %v", err)
		}
	}()
	rep := &Report{}
	logs := filepath.Join(cfg.StateDir, "runs")

	logf("testing the bad revision %s (%d run(s))", short(bad), cfg.Runs)
	if err := checkout(ctx, clone, bad); err != nil {
		return nil, err
	}
	sb := TestCommit(ctx, clone, b, t, cfg.Runs, logs, nil)
	rep.Steps = append(rep.Steps, sb)
	logf("%s %s: %s: %s", short(sb.Commit), sb.Subject, sb.Verdict, sb.Reason)
	switch {
	case ctx.Err() != nil:
		return rep, fmt.Errorf("%w: interrupted", ErrInfra)
	case sb.Verdict == Good:
		return rep, fmt.Errorf("%w: the bad revision %s passes (%s): nothing to bisect; check --focus, --label-filter and --runs", ErrInput, short(bad), sb.Reason)
	case sb.Verdict == Skip:
		return rep, fmt.Errorf("%w: cannot test the bad revision %s: %s", ErrInfra, short(bad), sb.Reason)
	}
	spec, msg, _ := strings.Cut(sb.Failure.Message, "\n")
	rep.Target = Target{Spec: spec, Location: sb.Failure.Location, Class: sb.Failure.Class, Message: msg}
	logf("target: %q fails (%s) at %s", spec, rep.Target.Class, rep.Target.Location)

	logf("testing the good revision %s", short(good))
	if err := checkout(ctx, clone, good); err != nil {
		return rep, err
	}
	sg := TestCommit(ctx, clone, b, t, cfg.Runs, logs, &rep.Target)
	rep.Steps = append(rep.Steps, sg)
	logf("%s %s: %s: %s", short(sg.Commit), sg.Subject, sg.Verdict, sg.Reason)
	switch {
	case ctx.Err() != nil:
		return rep, fmt.Errorf("%w: interrupted", ErrInfra)
	case sg.Verdict == Bad:
		return rep, fmt.Errorf("%w: the good revision %s fails the same assertion: %s", ErrInput, short(good), sg.Reason)
	case sg.Verdict == Skip:
		return rep, fmt.Errorf("%w: cannot test the good revision %s: %s", ErrInfra, short(good), sg.Reason)
	}

	cwd, _ := os.Getwd()
	st := state{Clone: clone, Runs: cfg.Runs, Target: rep.Target, Args: cfg.Args, Cwd: cwd}
	sb2, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.StateDir, stateFile), sb2, 0o644); err != nil {
		return rep, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	os.Remove(filepath.Join(cfg.StateDir, stepsFile))
	if _, err := git(ctx, clone, "bisect", "start", bad, good); err != nil {
		return rep, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	step := append(append([]string{}, cfg.StepCommand...), "--state", cfg.StateDir)
	logf("git bisect run %s", strings.Join(step, " "))
	cmd := exec.CommandContext(ctx, "git", append([]string{"bisect", "run"}, step...)...)
	cmd.Dir = clone
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, orDiscard(cfg.Log))
	cmd.Stderr = orDiscard(cfg.Log)
	// Its own process group: on cancellation (Ctrl-C) the step and what it
	// runs get SIGINT, stop their VMs and exit 128, which ends git bisect
	// run; the clone is reset below.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = time.Minute
	runErr := cmd.Run()
	steps, err := readSteps(cfg.StateDir)
	if err != nil {
		return rep, fmt.Errorf("%w: %v", ErrInfra, err)
	}
	rep.Steps = append(rep.Steps, steps...)
	if ctx.Err() != nil {
		return rep, fmt.Errorf("%w: interrupted", ErrInfra)
	}
	if err := rep.conclude(ctx, clone, out.String()); err != nil {
		if runErr != nil {
			err = fmt.Errorf("%w (git bisect run: %v)", err, runErr)
		}
		return rep, err
	}
	if rep.Culprit != nil {
		rep.Warning = identicalImage(ctx, clone, *rep.Culprit, rep.Steps, b)
	}
	rep.Elapsed = time.Since(began)
	return rep, nil
}

var (
	firstBadRe   = regexp.MustCompile(`(?m)^([0-9a-f]{40}) is the first bad commit`)
	candidatesRe = regexp.MustCompile(`(?m)^There are only 'skip'ped commits left to test\.`)
	shaLineRe    = regexp.MustCompile(`(?m)^([0-9a-f]{40})$`)
)

// conclude reads git bisect run's verdict from its output.
func (r *Report) conclude(ctx context.Context, clone, out string) error {
	if m := firstBadRe.FindStringSubmatch(out); m != nil {
		c := describe(ctx, clone, m[1])
		r.Culprit = &c
		return nil
	}
	if candidatesRe.MatchString(out) {
		for _, m := range shaLineRe.FindAllStringSubmatch(out, -1) {
			r.Candidates = append(r.Candidates, describe(ctx, clone, m[1]))
		}
		return nil
	}
	return fmt.Errorf("%w: git bisect run did not name a first bad commit:\n%s", ErrInfra, lastLines(out, 15))
}

// identicalImage warns when the culprit's image is the same as its
// parent's, building the parent if no step did.
func identicalImage(ctx context.Context, clone string, culprit Commit, steps []Step, b Builder) string {
	digests := map[string]string{}
	for _, s := range steps {
		if s.Digest != "" {
			digests[s.Commit] = s.Digest
		}
	}
	parents, err := git(ctx, clone, "rev-list", "--parents", "-n", "1", culprit.SHA)
	if err != nil {
		return ""
	}
	f := strings.Fields(parents)
	if len(f) != 2 { // a root or a merge: no single parent to compare with
		return ""
	}
	parent := f[1]
	pd, ok := digests[parent]
	if !ok {
		if checkout(ctx, clone, parent) != nil {
			return ""
		}
		img, err := b.Build(ctx, clone)
		if err != nil {
			return ""
		}
		pd = img.Digest
	}
	if cd := digests[culprit.SHA]; cd != "" && cd == pd {
		return fmt.Sprintf("the culprit's kernel image is identical to its parent's (%s): the commit does not change the kernel that ran, so the failure may be a flake (raise --runs) or lie outside the image", short(parent))
	}
	return ""
}

// Check checks the repository and the revisions as Run does, for a caller
// that wants to refuse bad input before anything slow.
func Check(ctx context.Context, tree, good, bad string) error {
	_, _, err := resolve(ctx, tree, good, bad)
	return err
}

// resolve checks the repository and turns the revisions into commits, good
// an ancestor of bad.
func resolve(ctx context.Context, tree, good, bad string) (string, string, error) {
	if _, err := git(ctx, tree, "rev-parse", "--git-dir"); err != nil {
		return "", "", fmt.Errorf("%w: %s is not a git repository: %v", ErrInput, tree, err)
	}
	var out [2]string
	for i, rev := range []string{good, bad} {
		sha, err := git(ctx, tree, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
		if err != nil || strings.TrimSpace(sha) == "" {
			return "", "", fmt.Errorf("%w: %q is not a commit in %s", ErrInput, rev, tree)
		}
		out[i] = strings.TrimSpace(sha)
	}
	if out[0] == out[1] {
		return "", "", fmt.Errorf("%w: --good and --bad are the same commit", ErrInput)
	}
	if _, err := git(ctx, tree, "merge-base", "--is-ancestor", out[0], out[1]); err != nil {
		return "", "", fmt.Errorf("%w: --good %s is not an ancestor of --bad %s", ErrInput, good, bad)
	}
	return out[0], out[1], nil
}

// prepareClone returns the shared clone of tree under dir, creating it or
// bringing it back to a clean state (no bisection, no local changes).
func prepareClone(ctx context.Context, tree, dir string) (string, error) {
	abs, err := filepath.Abs(tree)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInput, err)
	}
	top, err := git(ctx, abs, "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInput, tree, err)
	}
	top = strings.TrimSpace(top)
	clone := filepath.Join(dir, filepath.Base(top)+"-"+fsutil.HashString(top)[:8])
	if _, err := os.Stat(filepath.Join(clone, ".git")); err != nil {
		os.RemoveAll(clone)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("%w: %v", ErrInfra, err)
		}
		if _, err := git(ctx, dir, "clone", "--quiet", "--shared", "--no-checkout", top, clone); err != nil {
			return "", fmt.Errorf("%w: clone %s: %v", ErrInfra, top, err)
		}
	}
	git(ctx, clone, "bisect", "reset")
	// Commits made in the user's repository since the clone are in its
	// object store, which the clone borrows: revisions resolve by SHA.
	return clone, nil
}

// checkout puts rev in the clone's working tree, discarding anything a
// build left there.
func checkout(ctx context.Context, clone, rev string) error {
	if _, err := git(ctx, clone, "checkout", "--quiet", "--force", "--detach", rev); err != nil {
		return fmt.Errorf("%w: check out %s in %s: %v", ErrInfra, short(rev), clone, err)
	}
	git(ctx, clone, "clean", "--quiet", "-fdx")
	return nil
}

func head(ctx context.Context, dir string) (sha, subject string) {
	out, err := git(ctx, dir, "log", "-1", "--format=%H%x00%s", "HEAD")
	if err != nil {
		return "", ""
	}
	sha, subject, _ = strings.Cut(strings.TrimSpace(out), "\x00")
	return sha, subject
}

func describe(ctx context.Context, dir, sha string) Commit {
	out, err := git(ctx, dir, "log", "-1", "--format=%s", sha)
	if err != nil {
		return Commit{SHA: sha}
	}
	return Commit{SHA: sha, Subject: strings.TrimSpace(out)}
}

// git runs git in dir and returns its standard output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// String is the report for the terminal.
func (r *Report) String() string {
	var b strings.Builder
	switch {
	case r.Culprit != nil:
		fmt.Fprintf(&b, "first bad commit: %s %s\n", r.Culprit.SHA, r.Culprit.Subject)
	case len(r.Candidates) > 0:
		fmt.Fprintf(&b, "no single first bad commit: skipped commits leave %d candidates:\n", len(r.Candidates))
		for _, c := range r.Candidates {
			fmt.Fprintf(&b, "  %s %s\n", c.SHA, c.Subject)
		}
	}
	if r.Target.Spec != "" {
		fmt.Fprintf(&b, "failing spec: %s\n", r.Target.Spec)
		fmt.Fprintf(&b, "assertion (%s) at %s:\n", r.Target.Class, r.Target.Location)
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(strings.TrimSpace(r.Target.Message), "\n", "\n  "))
	}
	if r.Warning != "" {
		fmt.Fprintf(&b, "WARNING: %s\n", r.Warning)
	}
	fmt.Fprintf(&b, "steps (%d):\n", len(r.Steps))
	fmt.Fprintf(&b, "  %-12s  %-4s  %-7s  %8s  %8s  %s\n", "commit", "runs", "verdict", "build", "test", "subject / reason")
	for _, s := range r.Steps {
		cached := ""
		if s.Cached {
			cached = "*"
		}
		fmt.Fprintf(&b, "  %-12s  %-4d  %-7s  %7s%1s  %8s  %s\n", short(s.Commit), len(s.Runs), s.Verdict,
			s.Build.Round(time.Second), cached, s.Test.Round(time.Second), s.Subject)
		fmt.Fprintf(&b, "  %-12s  %-4s  %-7s  %8s  %8s    %s\n", "", "", "", "", "", s.Reason)
	}
	if r.Elapsed > 0 {
		fmt.Fprintf(&b, "(build times marked * came from the cache; %s in all)\n", r.Elapsed.Round(time.Second))
	}
	return b.String()
}
