package mutate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/outcome"
)

const (
	distantSpec = "distant: when a sub-scheduler dispatches its sibling exits the caller"
	dispatchA   = "dispatch: when a child attaches on a cgroup runs the cgroup's tasks"
	dispatchB   = "dispatch: when the target cgroup id is unknown returns false"
	bootSpec    = "boot: boots"
)

// distantLines are changed lines of the distant-dispatch snippet as a
// coverage report would have them.
func distantLines() []Line {
	f := "kernel/sched/ext/distant.c"
	return []Line{
		{File: f, Line: 3, Text: "#ifdef CONFIG_EXT_SUB_SCHED"},
		{File: f, Line: 19, Text: "\tstruct rq *rq = scx_locked_rq();", Executable: true, Specs: []string{dispatchA, dispatchB, distantSpec}},
		{File: f, Line: 28, Text: "\tif (unlikely(!child))", Executable: true, Specs: []string{dispatchA, dispatchB, distantSpec}},
		{File: f, Line: 29, Text: "\t\treturn false;", Executable: true, Specs: []string{dispatchB}},
		{File: f, Line: 31, Text: "\tif (unlikely(scx_parent(child) != parent)) {", Executable: true, Specs: []string{dispatchA, distantSpec}},
		{File: f, Line: 32, Text: "\t\tscx_error(parent, ...", Executable: true, Specs: []string{distantSpec}},
		{File: f, Line: 34, Text: "\t\treturn false;", Executable: true},
		{File: f, Line: 37, Text: "\treturn scx_dispatch_sched(...) !=", Executable: true, Specs: []string{bootSpec, dispatchA}},
	}
}

func distantFS(t *testing.T) fstest.MapFS {
	data, err := os.ReadFile("testdata/distant.c")
	if err != nil {
		t.Fatal(err)
	}
	return fstest.MapFS{"kernel/sched/ext/distant.c": {Data: data}}
}

// ids returns the mutants' ids without the file, in file and line order.
func ids(ms []Mutant) []string {
	sorted := append([]Mutant(nil), ms...)
	sortMutants(sorted)
	var out []string
	for _, m := range sorted {
		out = append(out, strings.TrimPrefix(m.ID, "kernel/sched/ext/distant.c:"))
	}
	return out
}

func TestSelect(t *testing.T) {
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{Failing: map[string]string{bootSpec: "failed without a mutant [assertion]"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "28:negate-condition 29:replace-return 31:negate-condition 32:remove-call 37:swap-relational 37:replace-return"
	if got := strings.Join(ids(sel.Mutants), " "); got != want {
		t.Errorf("mutants %s\nwant %s", got, want)
	}
	for _, m := range sel.Mutants {
		switch m.Line {
		case 31:
			if strings.Join(m.Specs, "|") != dispatchA+"|"+distantSpec {
				t.Errorf("%s: specs %q", m.ID, m.Specs)
			}
		case 37:
			if strings.Join(m.Specs, "|") != dispatchA {
				t.Errorf("%s: specs %q, want the failing boot spec left out", m.ID, m.Specs)
			}
		}
	}
	if len(sel.NotExecuted) != 1 || sel.NotExecuted[0].Line != 34 {
		t.Errorf("not executed %v, want line 34", sel.NotExecuted)
	}
	if len(sel.NoMutant) != 1 || sel.NoMutant[0].Line != 19 {
		t.Errorf("no mutant %v, want line 19 (a declaration)", sel.NoMutant)
	}
	if sel.Generated != 6 {
		t.Errorf("generated %d", sel.Generated)
	}

	// A file that is no C does not stop the others.
	fsys := distantFS(t)
	fsys["kernel/sched/ext/broken.c"] = &fstest.MapFile{Data: []byte("int x;\nchar *s = \"open;\n")}
	lines := append(distantLines(), Line{File: "kernel/sched/ext/broken.c", Line: 1, Executable: true, Specs: []string{distantSpec}})
	sel, err = Select(fsys, lines, SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.Mutants) != 6 || !strings.Contains(sel.Unreadable["kernel/sched/ext/broken.c"], "line 2: unterminated string literal") ||
		len(sel.NoMutant) != 2 {
		t.Errorf("with a broken file: %d mutants, unreadable %v, no mutant %v", len(sel.Mutants), sel.Unreadable, sel.NoMutant)
	}

	// Only the boot spec executed line 37: the line is reported, no mutant.
	lines = distantLines()
	lines[len(lines)-1].Specs = []string{bootSpec}
	sel, err = Select(distantFS(t), lines, SelectOptions{Failing: map[string]string{bootSpec: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.OnlyFailing) != 1 || sel.OnlyFailing[0].Line != 37 {
		t.Errorf("only failing %v, want line 37", sel.OnlyFailing)
	}

	// --max-mutants spreads over the lines before taking a second
	// mutant of one; --mutants filters by ID.
	sel, err = Select(distantFS(t), distantLines(), SelectOptions{Max: 5})
	if err != nil {
		t.Fatal(err)
	}
	lineSet := map[int]bool{}
	for _, m := range sel.Mutants {
		lineSet[m.Line] = true
	}
	if len(sel.Mutants) != 5 || len(lineSet) != 5 || sel.Capped != 1 {
		t.Errorf("--max-mutants 5: %v (capped %d), want one on each of the 5 lines", ids(sel.Mutants), sel.Capped)
	}
	sel, err = Select(distantFS(t), distantLines(), SelectOptions{Filter: regexp.MustCompile(`:31:`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids(sel.Mutants), " "); got != "31:negate-condition" || sel.Filtered != 5 {
		t.Errorf("--mutants :31: gave %s (filtered %d)", got, sel.Filtered)
	}
}

// fakeBuilder stands in for the kernel build in these tests (no kernel is
// built): it returns the error the test sets for a mutant, else a kernel
// named after the mutant, and counts its builds.
type fakeBuilder struct {
	errs   map[string]error
	built  []string
	onCall func(m Mutant)
}

func (b *fakeBuilder) Build(ctx context.Context, m Mutant, log io.Writer) (Kernel, error) {
	if b.onCall != nil {
		b.onCall(m)
	}
	if err := ctx.Err(); err != nil {
		return Kernel{}, err
	}
	b.built = append(b.built, m.ID)
	fmt.Fprintf(log, "building %s\n", m.ID)
	if err := b.errs[m.ID]; err != nil {
		return Kernel{}, err
	}
	return Kernel{Image: "vmlinux-" + m.ID}, nil
}

// spec is one spec's outcome in a fake run: "" passed, "skipped", or the
// failure class.
type fakeRun struct {
	exit  int
	specs map[string]string
}

// fakeTester stands in for booting the kernel and running the suites in
// these tests (no VM runs): it returns the runs the test sets for a
// mutant's kernel, one per run asked for (the last repeated).
type fakeTester struct {
	runs   map[string][]fakeRun
	tested []string
}

func (t *fakeTester) Test(ctx context.Context, k Kernel, specs []string, n int, dir string) ([]runner.Run, error) {
	id := strings.TrimPrefix(k.Image, "vmlinux-kernel/sched/ext/distant.c:")
	t.tested = append(t.tested, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	set := t.runs[id]
	var out []runner.Run
	for i := range n {
		fr := fakeRun{}
		if len(set) > 0 {
			fr = set[min(i, len(set)-1)]
		}
		r := runner.Run{Index: i + 1, ExitCode: fr.exit}
		if fr.exit == outcome.ExitInfra {
			r.Err = "run exited 3"
		}
		for _, s := range specs {
			res := runner.SpecResult{Text: s, State: "passed"}
			switch c := fr.specs[s]; c {
			case "":
			case "skipped":
				res.State, res.Failure = "skipped", "kernel lacks API 7.3"
			case "absent":
				continue
			default:
				res.State, res.Class, res.Failure = "failed", outcome.Class(c), c+" failure\nmore"
			}
			r.Specs = append(r.Specs, res)
		}
		out = append(out, r)
	}
	return out, nil
}

func status(rep *Report) map[string]Result {
	out := map[string]Result{}
	for _, r := range rep.Results {
		out[strings.TrimPrefix(r.Mutant.ID, "kernel/sched/ext/distant.c:")] = r
	}
	return out
}

// TestClassify runs the selected mutants of the snippet with a fake
// builder and tester (no kernel is built, no VM boots) and checks the
// classification of each outcome.
func TestClassify(t *testing.T) {
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := "kernel/sched/ext/distant.c:"
	b := &fakeBuilder{errs: map[string]error{
		p + "29:replace-return": fmt.Errorf("build: %w: ext.c:29: error: expected ';'", ErrStillborn),
		p + "32:remove-call":    fmt.Errorf("patch: %w: hunk FAILED", ErrNotApplied),
	}}
	tr := &fakeTester{runs: map[string][]fakeRun{
		"31:negate-condition": {{exit: 1, specs: map[string]string{distantSpec: "exit"}}},
		"37:replace-return":   {{exit: 1, specs: map[string]string{dispatchA: "crash", bootSpec: "assertion"}}},
		"28:negate-condition": {{exit: 1, specs: map[string]string{dispatchB: "infra"}}},
		"37:swap-relational":  {{exit: 3}},
	}}
	var log bytes.Buffer
	rep, err := Run(context.Background(), Config{StateDir: t.TempDir(), Runs: 1, Log: &log}, sel, b, tr)
	if err != nil {
		t.Fatal(err)
	}
	got := status(rep)
	check := func(id string, want Status, reason string) {
		t.Helper()
		r := got[id]
		if r.Status != want || !strings.Contains(r.Reason, reason) {
			t.Errorf("%s: %s (%s), want %s (%s)", id, r.Status, r.Reason, want, reason)
		}
	}
	check("29:replace-return", Stillborn, "does not compile")
	check("32:remove-call", Unknown, "does not apply")
	check("31:negate-condition", Killed, "")
	check("28:negate-condition", Unknown, "failed only by infrastructure")
	check("37:swap-relational", Unknown, "no run tested the kernel: run exited 3")
	check("37:replace-return", Killed, "") // one run: an assertion kills, a crash too
	if k := got["37:replace-return"].Kills; len(k) != 2 || k[0].Class != outcome.Crash && k[1].Class != outcome.Crash ||
		k[0].Class != outcome.Assertion && k[1].Class != outcome.Assertion {
		t.Errorf("kills of 37:replace-return: %+v", k)
	}
	if k := got["31:negate-condition"].Kills; len(k) != 1 || k[0].Spec != distantSpec || k[0].Class != outcome.Exit || k[0].Message != "exit failure" {
		t.Errorf("kills of 31:negate-condition: %+v", k)
	}
	if rep.Killed != 2 || rep.Survived != 0 || rep.Unknown != 3 || rep.Stillborn != 1 {
		t.Errorf("counts: %d killed %d survived %d unknown %d stillborn", rep.Killed, rep.Survived, rep.Unknown, rep.Stillborn)
	}
	if len(tr.tested) != 4 {
		t.Errorf("tested %v: a stillborn or unapplied mutant must not be tested", tr.tested)
	}
	for _, want := range []string{`\[[1-6]/6\] kernel/sched/ext/distant.c:31:negate-condition`, "killed by", `stillborn \(does not compile`} {
		if !regexp.MustCompile(want).MatchString(log.String()) {
			t.Errorf("progress lacks %q:\n%s", want, log.String())
		}
	}

	// Three runs: one assertion in three is flaky, not a kill; a crash
	// once is a kill; passing every time is a survivor.
	rep, err = Run(context.Background(), Config{StateDir: t.TempDir(), Runs: 3}, sel, &fakeBuilder{}, &fakeTester{runs: map[string][]fakeRun{
		"37:replace-return":   {{exit: 1, specs: map[string]string{dispatchA: "assertion"}}, {exit: 0}},
		"37:swap-relational":  {{exit: 0}, {exit: 1, specs: map[string]string{dispatchA: "crash"}}, {exit: 0}},
		"28:negate-condition": {{exit: 0, specs: map[string]string{dispatchB: "skipped"}}},
		"29:replace-return":   {{exit: 0, specs: map[string]string{dispatchB: "absent"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got = status(rep)
	check("37:replace-return", Unknown, "flaky (passed 2 of 3)")
	check("37:swap-relational", Killed, "")
	check("31:negate-condition", Survived, "")
	check("28:negate-condition", Unknown, "skipped: kernel lacks API 7.3")
	check("29:replace-return", Unknown, "did not run")
	if rep.Score() != 1.0/3 {
		t.Errorf("score %v, want 1/3 (1 killed, 2 survived)", rep.Score())
	}
}

// TestResume interrupts a run after its second mutant and runs it again
// on the same state directory with a fake builder and tester (no kernel,
// no VM): the second run builds only the mutants the first did not finish.
func TestResume(t *testing.T) {
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	b := &fakeBuilder{onCall: func(m Mutant) {
		if m.ID == sel.Mutants[2].ID {
			cancel() // Ctrl-C while the third mutant builds
		}
	}}
	tr := &fakeTester{runs: map[string][]fakeRun{"31:negate-condition": {{exit: 1, specs: map[string]string{distantSpec: "exit"}}}}}
	rep, err := Run(ctx, Config{StateDir: state, Runs: 1}, sel, b, tr)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "interrupted" || len(rep.Results) != 2 || len(rep.NotRun) != 4 {
		t.Fatalf("interrupted run: stopped %q, %d results, %d not run", rep.Stopped, len(rep.Results), len(rep.NotRun))
	}
	if !strings.Contains(rep.Summary(), ", 4 not run;") || !strings.HasSuffix(rep.Summary(), "(stopped: interrupted)") {
		t.Errorf("summary %q", rep.Summary())
	}

	b2 := &fakeBuilder{}
	rep2, err := Run(context.Background(), Config{StateDir: state, Runs: 1}, sel, b2, tr)
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.built) != 4 || b2.built[0] != sel.Mutants[2].ID {
		t.Errorf("resumed run built %v, want the last 4", b2.built)
	}
	if len(rep2.Results) != 6 || rep2.Stopped != "" || len(rep2.NotRun) != 0 {
		t.Errorf("resumed run: %d results, stopped %q, %d not run", len(rep2.Results), rep2.Stopped, len(rep2.NotRun))
	}
	if rep2.Killed != 1 || rep2.Survived != 5 {
		t.Errorf("resumed run: %d killed, %d survived", rep2.Killed, rep2.Survived)
	}

	// Another --runs runs them again; a changed mutant (another diff)
	// too.
	b3 := &fakeBuilder{}
	if _, err := Run(context.Background(), Config{StateDir: state, Runs: 2}, sel, b3, tr); err != nil {
		t.Fatal(err)
	}
	if len(b3.built) != 6 {
		t.Errorf("--runs 2 after --runs 1 built %d mutants, want all 6", len(b3.built))
	}
	sel.Mutants[0].Diff += " "
	b4 := &fakeBuilder{}
	if _, err := Run(context.Background(), Config{StateDir: state, Runs: 2}, sel, b4, tr); err != nil {
		t.Fatal(err)
	}
	if len(b4.built) != 1 || b4.built[0] != sel.Mutants[0].ID {
		t.Errorf("after changing one mutant's diff, built %v", b4.built)
	}
}

// TestBudget stops a run whose budget runs out during a build (fake
// builder and tester): a partial report, the mutant under way not saved.
func TestBudget(t *testing.T) {
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	b := &fakeBuilder{onCall: func(m Mutant) {
		if m.ID == sel.Mutants[1].ID {
			time.Sleep(300 * time.Millisecond)
		}
	}}
	rep, err := Run(context.Background(), Config{StateDir: state, Runs: 1, Budget: 200 * time.Millisecond}, sel, b, &fakeTester{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Stopped, "--budget 200ms used up") || len(rep.Results) != 1 || len(rep.NotRun) != 5 {
		t.Errorf("stopped %q, %d results, %d not run", rep.Stopped, len(rep.Results), len(rep.NotRun))
	}
	ents, _ := os.ReadDir(state + "/" + resultsDir)
	if len(ents) != 1 {
		t.Errorf("%d results saved, want 1", len(ents))
	}
}

// TestBuilderError stops the run when the builder fails for another
// reason than the mutant (fake builder and tester).
func TestBuilderError(t *testing.T) {
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBuilder{errs: map[string]error{sel.Mutants[1].ID: errors.New("no space left on device")}}
	rep, err := Run(context.Background(), Config{StateDir: t.TempDir(), Runs: 1}, sel, b, &fakeTester{})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("error %v", err)
	}
	if len(rep.Results) != 1 || len(rep.NotRun) != 5 || !strings.Contains(rep.Err, "no space left") {
		t.Errorf("%d results, %d not run, err %q", len(rep.Results), len(rep.NotRun), rep.Err)
	}
}

// reportFixture runs the mutants of lines 31 and 37 of the snippet with a
// fake builder and tester (no kernel, no VM): the negated distant check is
// killed by a distant spec with class exit, 37's returned value is
// stillborn, 37's swapped comparison survives.
func reportFixture(t *testing.T) *Report {
	t.Helper()
	sel, err := Select(distantFS(t), distantLines(), SelectOptions{Filter: regexp.MustCompile(`:3[17]:`)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &fakeTester{runs: map[string][]fakeRun{"31:negate-condition": {{exit: 1, specs: map[string]string{distantSpec: "exit"}}}}}
	b := &fakeBuilder{errs: map[string]error{"kernel/sched/ext/distant.c:37:replace-return": fmt.Errorf("%w: error: x", ErrStillborn)}}
	rep, err := Run(context.Background(), Config{StateDir: t.TempDir(), Runs: 1}, sel, b, tr)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReport(t *testing.T) {
	rep := reportFixture(t)
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"mutation score: 50.0% (1 killed of 2); 1 survived, 0 unknown, 1 stillborn; 1 changed line(s) no spec executes",
		"Survived (no spec noticed",
		"  kernel/sched/ext/distant.c:37:swap-relational  `!=` → `==`\n    specs that ran on it (2), all passed:\n      " + bootSpec + "\n      " + dispatchA,
		"-\treturn scx_dispatch_sched(child, rq, rq->scx.sub_dispatch_prev, true) !=\n    +\treturn scx_dispatch_sched(child, rq, rq->scx.sub_dispatch_prev, true) ==",
		"Killed:\n  kernel/sched/ext/distant.c:31:negate-condition  if (unlikely(scx_parent(child) != parent)) → if (!(…))\n    by [exit] " + distantSpec + ": exit failure",
		"Stillborn (did not compile; not counted):\n  kernel/sched/ext/distant.c:37:replace-return",
		"Not executed: no spec can kill a mutant here (1 lines):\n  kernel/sched/ext/distant.c:34 | return false;",
		"left out by --mutants",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary struct {
			Score    *float64 `json:"score"`
			Killed   int      `json:"killed"`
			Survived int      `json:"survived"`
		} `json:"summary"`
		Results []struct {
			Status string `json:"status"`
			Mutant struct {
				Diff string `json:"diff"`
			} `json:"mutant"`
			Kills []Kill `json:"kills"`
		} `json:"results"`
		Selection struct {
			NotExecuted []Line `json:"not_executed"`
		} `json:"selection"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.Score == nil || *doc.Summary.Score != 0.5 || doc.Summary.Killed != 1 || doc.Summary.Survived != 1 ||
		len(doc.Results) != 3 || doc.Results[0].Mutant.Diff == "" || len(doc.Selection.NotExecuted) != 1 {
		t.Errorf("json report:\n%s", js.String())
	}

	empty := &Report{Selection: &Selection{}}
	js.Reset()
	empty.WriteJSON(&js)
	if !strings.Contains(js.String(), `"score": null`) || empty.Scored() {
		t.Errorf("a report with nothing scored: %s", js.String())
	}
}

// TestAnnotated checks the per-file view of the text report: each changed
// executable line with a mark per mutant, or why it has none.
func TestAnnotated(t *testing.T) {
	rep := reportFixture(t)
	var text bytes.Buffer
	rep.WriteText(&text)
	want := `
Changed lines (a mark per mutant: K killed, S survived, ? unknown, x stillborn, . not run):
  kernel/sched/ext/distant.c
        19  - no operator applies | struct rq *rq = scx_locked_rq();
        31  K            | if (unlikely(scx_parent(child) != parent)) {
        34  - not executed | return false;
        37  S x          | return scx_dispatch_sched(child, rq, rq->scx.sub_dispatch_prev, true) !=
`
	if !strings.Contains(text.String(), want) {
		t.Errorf("text report lacks%s\n%s", want, text.String())
	}
}
