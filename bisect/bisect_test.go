package bisect

import (
	"context"
	"errors"
	"fmt"
	"github.com/scxcheck/scxcheck/outcome"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
)

// The synthetic kernel: a tree whose kernel.txt says what its "kernel"
// does. fakeBuilder builds it into an image file; fakeTester "boots" the
// image and runs one spec:
//
//	ok            the spec passes
//	bug           the spec fails at suites/x.go:10 (an exit-kind assertion)
//	flaky-bug:K   the spec fails at suites/x.go:10 in run K only
//	other         the spec fails at suites/x.go:99 (differently)
//	noboot        the run is an infrastructure failure (exit 3)
//	slow          the run takes a minute (for interrupting)
//	nobuild       the build fails
//
// A line "note: ..." is not part of the image's digest: two commits that
// differ only there build identical images.

const (
	fakeSpec     = "the fake spec fails when the kernel has the bug"
	fakeLocation = "suites/x.go:10"
)

type fakeBuilder struct{ out string }

func (b fakeBuilder) Build(ctx context.Context, dir string) (Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kernel.txt"))
	if err != nil {
		return Image{}, err
	}
	code, _, _ := strings.Cut(string(data), "\nnote:")
	if strings.TrimSpace(code) == "nobuild" {
		return Image{}, errors.New("kernel build failed (make: exit status 2) after 3s; last errors:\n  ext.c:1: error: expected ';'")
	}
	os.MkdirAll(b.out, 0o755)
	img := filepath.Join(b.out, fmt.Sprintf("image-%d", time.Now().UnixNano()))
	if err := os.WriteFile(img, data, 0o644); err != nil {
		return Image{}, err
	}
	return Image{Boot: img, Digest: "fake:" + strings.TrimSpace(code)}, nil
}

type fakeTester struct{}

func (fakeTester) Test(ctx context.Context, img Image, runs int, logDir string, stop func(runner.Run) bool) ([]runner.Run, error) {
	data, err := os.ReadFile(img.Boot)
	if err != nil {
		return nil, err
	}
	code, note, _ := strings.Cut(string(data), "\nnote:")
	kind := strings.TrimSpace(code)
	if strings.Contains(note, "bug") { // a failure outside the image
		kind = "bug"
	}
	var out []runner.Run
	for i := 1; i <= runs; i++ {
		r := runner.Run{Index: i}
		pass := runner.SpecResult{Text: fakeSpec, State: "passed"}
		fail := runner.SpecResult{Text: fakeSpec, State: "failed", Class: outcome.Exit, Location: fakeLocation,
			Failure: "expected an exit SCX_EXIT_ERROR, got no exit"}
		switch {
		case kind == "ok":
			r.Specs = []runner.SpecResult{pass}
		case kind == "bug", kind == "flaky-bug:"+strconv.Itoa(i):
			r.ExitCode, r.Specs = 1, []runner.SpecResult{fail}
		case strings.HasPrefix(kind, "flaky-bug:"):
			r.Specs = []runner.SpecResult{pass}
		case kind == "other":
			fail.Location = "suites/x.go:99"
			r.ExitCode, r.Specs = 1, []runner.SpecResult{fail}
		case kind == "noboot":
			r.ExitCode = 3
		case kind == "slow":
			select {
			case <-ctx.Done():
				r.Err = "interrupted"
			case <-time.After(time.Minute):
			}
		}
		out = append(out, r)
		if ctx.Err() != nil || stop(r) {
			break
		}
	}
	return out, nil
}

// TestMain makes this test binary the fake `scxcheck bisect-step`.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_BISECT_STEP") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		dir := os.Args[len(os.Args)-1] // ... --state DIR
		os.Exit(RunStep(ctx, dir, fakeBuilder{out: filepath.Join(dir, "images")}, fakeTester{}))
	}
	os.Exit(m.Run())
}

// history makes a repository with one commit per kernel.txt content (the
// first is the root) and returns its directory and the commits.
func history(t *testing.T, contents ...string) (string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "linux")
	os.MkdirAll(dir, 0o755)
	gitT(t, dir, "init", "-q", "-b", "master")
	gitT(t, dir, "config", "user.email", "dev@example.org")
	gitT(t, dir, "config", "user.name", "Dev")
	var shas []string
	for i, c := range contents {
		os.WriteFile(filepath.Join(dir, "kernel.txt"), []byte(c+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%d.c", i)), []byte("int x;\n"), 0o644)
		gitT(t, dir, "add", "-A")
		gitT(t, dir, "commit", "-q", "-m", fmt.Sprintf("commit %d: %s", i, strings.SplitN(c, "\n", 2)[0]))
		shas = append(shas, strings.TrimSpace(gitT(t, dir, "rev-parse", "HEAD")))
	}
	return dir, shas
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := git(context.Background(), dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// repoState is everything of the user's repository that bisecting must
// not change.
func repoState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"rev-parse", "HEAD"}, {"symbolic-ref", "-q", "HEAD"}, {"status", "--porcelain", "--untracked-files=all"},
		{"for-each-ref"}, {"worktree", "list", "--porcelain"}, {"stash", "list"},
	} {
		out, _ := git(context.Background(), dir, args...)
		fmt.Fprintf(&b, "%v:\n%s\n", args, out)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "kernel.txt"))
	fmt.Fprintf(&b, "kernel.txt: %q\n", data)
	if _, err := os.Stat(filepath.Join(dir, ".git", "BISECT_LOG")); err == nil {
		b.WriteString("BISECT_LOG exists\n")
	}
	return b.String()
}

func fakeConfig(t *testing.T, tree, good, bad string, runs int) Config {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_BISECT_STEP", "") // only the step processes get it
	cache := t.TempDir()
	return Config{
		Tree: tree, Good: good, Bad: bad, Runs: runs,
		CloneDir:    filepath.Join(cache, "clones"),
		StateDir:    filepath.Join(cache, "state"),
		StepCommand: []string{"env", "FAKE_BISECT_STEP=1", self, "bisect-step"},
	}
}

// runFake bisects with the fake builder and tester, and checks the user's
// repository (with an uncommitted change) is as it was.
func runFake(t *testing.T, ctx context.Context, cfg Config) (*Report, error) {
	t.Helper()
	os.WriteFile(filepath.Join(cfg.Tree, "kernel.txt"), []byte("uncommitted work\n"), 0o644)
	before := repoState(t, cfg.Tree)
	var log strings.Builder
	cfg.Log = &log
	rep, err := Run(ctx, cfg, fakeBuilder{out: filepath.Join(cfg.StateDir, "images")}, fakeTester{})
	if after := repoState(t, cfg.Tree); after != before {
		t.Errorf("the user's repository changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	t.Logf("log:\n%s", log.String())
	if rep != nil {
		t.Logf("report:\n%s", rep)
	}
	return rep, err
}

func TestBisectFindsPlantedCommit(t *testing.T) {
	tree, c := history(t, "ok", "ok", "nobuild", "ok", "ok", "ok", "bug", "bug", "bug", "bug")
	rep, err := runFake(t, context.Background(), fakeConfig(t, tree, c[0], c[9], 3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Culprit == nil || rep.Culprit.SHA != c[6] || rep.Culprit.Subject != "commit 6: bug" {
		t.Fatalf("culprit %+v, want %s commit 6: bug", rep.Culprit, c[6])
	}
	if rep.Target.Spec != fakeSpec || rep.Target.Location != fakeLocation || rep.Target.Class != outcome.Exit ||
		!strings.Contains(rep.Target.Message, "expected an exit SCX_EXIT_ERROR") {
		t.Errorf("target %+v", rep.Target)
	}
	if rep.Warning != "" {
		t.Errorf("unexpected warning: %s", rep.Warning)
	}
	if len(rep.Steps) < 4 || rep.Steps[0].Commit != c[9] || rep.Steps[0].Verdict != Bad || rep.Steps[1].Commit != c[0] || rep.Steps[1].Verdict != Good {
		t.Fatalf("the bad and good revisions are tested first: %+v", rep.Steps)
	}
	byCommit := map[string]Step{}
	for _, s := range rep.Steps {
		byCommit[s.Commit] = s
		switch s.Verdict {
		case Good:
			if len(s.Runs) != 3 {
				t.Errorf("good commit %s: %d runs, want 3 (every run must pass)", short(s.Commit), len(s.Runs))
			}
		case Bad:
			if len(s.Runs) != 1 {
				t.Errorf("bad commit %s: %d runs, want 1 (one failing run decides)", short(s.Commit), len(s.Runs))
			}
		}
	}
	if s, ok := byCommit[c[6]]; !ok || s.Verdict != Bad {
		t.Errorf("the culprit was not tested bad: %+v", s)
	}
	if s, ok := byCommit[c[5]]; !ok || s.Verdict != Good {
		t.Errorf("the culprit's parent was not tested good: %+v", s)
	}
	text := rep.String()
	for _, want := range []string{"first bad commit: " + c[6] + " commit 6: bug", "failing spec: " + fakeSpec, "assertion (exit) at " + fakeLocation} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// A commit that does not build is skipped; when only skipped commits are
// left, the report lists the candidates.
func TestBisectSkipsBuildFailures(t *testing.T) {
	tree, c := history(t, "ok", "nobuild", "nobuild", "bug")
	rep, err := runFake(t, context.Background(), fakeConfig(t, tree, c[0], c[3], 1))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Culprit != nil || len(rep.Candidates) != 3 {
		t.Fatalf("culprit %+v, candidates %+v; want none and 3 candidates", rep.Culprit, rep.Candidates)
	}
	var skips int
	for _, s := range rep.Steps {
		if s.Verdict == Skip {
			skips++
			if !strings.HasPrefix(s.Reason, "build: kernel build failed") || len(s.Runs) != 0 {
				t.Errorf("skip step %+v", s)
			}
		}
	}
	if skips == 0 {
		t.Error("no commit was skipped")
	}
	if !strings.Contains(rep.String(), "skipped commits leave 3 candidates") {
		t.Errorf("report:\n%s", rep)
	}
}

// A failure in one run of three makes a commit bad: with --runs 3 the
// flaky regression is found where one run would have missed it.
func TestBisectRunsEachCommitNTimes(t *testing.T) {
	tree, c := history(t, "ok", "ok", "ok", "flaky-bug:3", "flaky-bug:3", "flaky-bug:3", "bug")
	rep, err := runFake(t, context.Background(), fakeConfig(t, tree, c[0], c[6], 3))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Culprit == nil || rep.Culprit.SHA != c[3] {
		t.Fatalf("culprit %+v, want commit 3", rep.Culprit)
	}
	for _, s := range rep.Steps {
		if s.Verdict == Bad && s.Commit != c[6] && len(s.Runs) != 3 {
			t.Errorf("flaky commit %s bad after %d runs, want 3 (it fails in run 3)", short(s.Commit), len(s.Runs))
		}
	}
}

// Other outcomes: a commit failing the spec elsewhere or not booting is a
// skip, never good or bad.
func TestBisectOtherFailuresAreSkips(t *testing.T) {
	tree, c := history(t, "ok", "other", "noboot", "bug")
	rep, err := runFake(t, context.Background(), fakeConfig(t, tree, c[0], c[3], 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Steps {
		switch s.Commit {
		case c[1]:
			if s.Verdict != Skip || !strings.Contains(s.Reason, "failed the spec differently") {
				t.Errorf("commit 1: %s %s", s.Verdict, s.Reason)
			}
		case c[2]:
			if s.Verdict != Skip || !strings.Contains(s.Reason, "infrastructure") {
				t.Errorf("commit 2: %s %s", s.Verdict, s.Reason)
			}
		}
	}
}

// The culprit changes only a file outside the image: the report warns.
func TestBisectWarnsOnIdenticalImage(t *testing.T) {
	tree, c := history(t, "ok", "ok\nnote: unrelated", "ok\nnote: bug in the test data", "ok\nnote: bug")
	rep, err := runFake(t, context.Background(), fakeConfig(t, tree, c[0], c[3], 1))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Culprit == nil || rep.Culprit.SHA != c[2] {
		t.Fatalf("culprit %+v, want commit 2", rep.Culprit)
	}
	if !strings.Contains(rep.Warning, "identical to its parent's") || !strings.Contains(rep.String(), "WARNING: ") {
		t.Errorf("no identical-image warning:\n%s", rep)
	}
}

func TestBisectRefusesBadInput(t *testing.T) {
	tree, c := history(t, "ok", "ok", "bug", "nobuild")
	for _, tc := range []struct {
		name, good, bad string
		want            error
		say             string
	}{
		{"bad passes", c[0], c[1], ErrInput, "passes"},
		{"good fails", c[2], c[2] + "~0", ErrInput, "same commit"},
		{"not an ancestor", c[2], c[1], ErrInput, "not an ancestor"},
		{"unknown revision", "v0.0-nope", c[2], ErrInput, "is not a commit"},
		{"bad does not build", c[0], c[3], ErrInfra, "cannot test the bad revision"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runFake(t, context.Background(), fakeConfig(t, tree, tc.good, tc.bad, 1))
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.say) {
				t.Errorf("err %v, want %v saying %q", err, tc.want, tc.say)
			}
		})
	}
	tree2, c2 := history(t, "bug", "bug")
	_, err := runFake(t, context.Background(), fakeConfig(t, tree2, c2[0], c2[1], 1))
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "good revision") {
		t.Errorf("good revision failing: %v", err)
	}
}

// Interrupting a bisection (Ctrl-C) mid-step leaves the user's repository
// as it was and no bisection in progress in the clone.
func TestBisectInterrupted(t *testing.T) {
	tree, c := history(t, "ok", "ok", "slow", "slow", "bug")
	cfg := fakeConfig(t, tree, c[0], c[4], 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Cancel once a step is under way (its slow run has started).
		for ctx.Err() == nil {
			if b, _ := os.ReadFile(filepath.Join(cfg.StateDir, stateFile)); len(b) > 0 {
				time.Sleep(2 * time.Second)
				cancel()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	began := time.Now()
	_, err := runFake(t, ctx, cfg)
	if !errors.Is(err, ErrInfra) || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("err %v, want an interruption", err)
	}
	if d := time.Since(began); d > 40*time.Second {
		t.Errorf("took %s to stop", d)
	}
	clones, _ := filepath.Glob(filepath.Join(cfg.CloneDir, "*"))
	for _, cl := range clones {
		if out, err := exec.Command("git", "-C", cl, "bisect", "log").CombinedOutput(); err == nil {
			t.Errorf("a bisection is still in progress in the clone %s:\n%s", cl, out)
		}
	}
}

func TestJudge(t *testing.T) {
	target := &Target{Spec: "s", Location: "x.go:1"}
	pass := runner.Run{Index: 1, Specs: []runner.SpecResult{{Text: "s", State: "passed"}}}
	bad := runner.Run{Index: 2, ExitCode: 1, Specs: []runner.SpecResult{{Text: "s", State: "failed", Class: outcome.Crash, Location: "x.go:1"}}}
	elsewhere := runner.Run{Index: 2, ExitCode: 1, Specs: []runner.SpecResult{{Text: "s", State: "failed", Class: outcome.Assertion, Location: "x.go:2"}}}
	otherSpec := runner.Run{Index: 2, ExitCode: 1, Specs: []runner.SpecResult{{Text: "s", State: "passed"}, {Text: "t", State: "failed", Class: outcome.Assertion}}}
	skipped := runner.Run{Index: 1, Specs: []runner.SpecResult{{Text: "s", State: "skipped", Failure: "kernel lacks x"}}}
	infra := runner.Run{Index: 2, ExitCode: 3}
	for _, c := range []struct {
		name   string
		runs   []runner.Run
		target *Target
		want   Verdict
	}{
		{"all pass", []runner.Run{pass, pass}, target, Good},
		{"one bad run", []runner.Run{pass, bad}, target, Bad},
		{"bad wins over infrastructure", []runner.Run{infra, bad}, target, Bad},
		{"failed elsewhere", []runner.Run{pass, elsewhere}, target, Skip},
		{"another spec failed", []runner.Run{otherSpec}, target, Good},
		{"skipped", []runner.Run{skipped}, target, Skip},
		{"infrastructure", []runner.Run{pass, infra}, target, Skip},
		{"no target: any failure", []runner.Run{pass, elsewhere}, nil, Bad},
		{"no target: all pass", []runner.Run{pass}, nil, Good},
	} {
		if got, why, _ := Judge(c.runs, c.target); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, why, c.want)
		}
	}
	for v, code := range map[Verdict]int{Good: 0, Bad: 1, Skip: 125} {
		if v.ExitCode() != code {
			t.Errorf("%s exits %d, want %d", v, v.ExitCode(), code)
		}
	}
}
