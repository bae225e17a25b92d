package report

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testdata/run is the artifacts directory of a real run (scxcheck run
// --timeline --artifacts, Debian's 7.2.13 under TCG, the timeline tracer
// that counts in the kernel: switch, idle, sd and ev lines) of three specs, with
// its JUnit report: the distant-dispatch spec whose root exits with
// SCX_EXIT_ERROR (passed), the two-children spec (passed), and the
// selftest that fails on purpose (failed, class exit). Only the repro
// bundle's script is kept of the bundle (its kernel is 60 MB).
const testRun = "testdata/run"

const (
	distantText = "scx_bpf_sub_dispatch of a sub-scheduler that is not a direct child when the root dispatches its grandchild exits the caller with SCX_EXIT_ERROR and takes its descendants down with SCX_EXIT_PARENT"
	twoText     = "scx_bpf_sub_dispatch when a child attaches on a cgroup gives two children side by side both progress"
	failingText = "scxcheck's own failure path fails on purpose: a running root scheduler is expected to have exited with SCX_EXIT_ERROR"
)

func build(t *testing.T, dir string) *Report {
	t.Helper()
	r, err := Build(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func spec(t *testing.T, r *Report, text string) *Spec {
	t.Helper()
	for _, g := range r.Groups {
		for _, s := range g.Specs {
			if s.Text == text {
				return s
			}
		}
	}
	t.Fatalf("no spec %q in the report", text)
	return nil
}

func TestBuildReadsTheRun(t *testing.T) {
	r := build(t, testRun)
	if len(r.Groups) != 1 || r.Repeated {
		t.Fatalf("groups = %d (repeated %v), want one plain run", len(r.Groups), r.Repeated)
	}
	g := r.Groups[0]
	if g.Passed != 2 || g.Failed != 1 || g.Skipped != 0 {
		t.Errorf("passed/failed/skipped = %d/%d/%d, want 2/1/0", g.Passed, g.Failed, g.Skipped)
	}
	if got := g.Props["scxcheck.kernel.release"]; got != "7.2.13+deb14-cloud-amd64" {
		t.Errorf("release from the JUnit properties = %q", got)
	}
	if g.Wall <= 0 || g.SpecTime <= 0 {
		t.Errorf("wall %v, time in specs %v: want both", g.Wall, g.SpecTime)
	}
	if r.Rows[0].Text != failingText {
		t.Errorf("first row %q, want the failure first", r.Rows[0].Text)
	}
	labels := map[string]LabelCount{}
	for _, l := range r.Labels {
		labels[l.Label] = l
	}
	if labels["distant"].Passed != 1 || labels["selftest"].Failed != 1 {
		t.Errorf("label counts = %+v", r.Labels)
	}
}

func TestFailingSpec(t *testing.T) {
	s := spec(t, build(t, testRun), failingText)
	if !s.Failed() || s.Outcome() != "failed" || s.Class != "exit" {
		t.Errorf("outcome %s, class %q: want failed, exit", s.Outcome(), s.Class)
	}
	if !strings.Contains(s.Failure, "fails on purpose") || !strings.HasSuffix(s.Location, "selftest.go:21") {
		t.Errorf("failure %q at %q", s.Failure, s.Location)
	}
	if s.Repro != "repro/repro.sh" {
		t.Errorf("repro = %q, want the bundle's script", s.Repro)
	}
	if s.Timeline == nil || !s.Timeline.Switches || len(s.Timeline.CPUs) != 2 {
		t.Fatalf("timeline %+v: want two CPU lanes from the switches", s.Timeline)
	}
	if o := ownerKeys(s.Timeline); !o["sched:selftest@1"] {
		t.Errorf("owners %v: want the selftest root scheduler", o)
	}
}

func ownerKeys(t *Timeline) map[string]bool {
	m := map[string]bool{}
	for _, o := range t.Owners {
		m[o.Key] = true
	}
	return m
}

// The distant spec's root exits with SCX_EXIT_ERROR: the exit mark is at
// the time of the kernel log line saying so, not at a sampled trace line.
func TestDistantExitAtTheKernelLogTime(t *testing.T) {
	s := spec(t, build(t, testRun), distantText)
	kmsg, err := os.ReadFile(filepath.Join(s.Dir, "kmsg.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\[\s*(\d+\.\d+)\] <3> sched_ext: BPF scheduler "root" disabled \(runtime error\)`).FindSubmatch(kmsg)
	if m == nil {
		t.Fatal("kmsg.txt has no error exit of root")
	}
	var exits []Mark
	for _, mk := range s.Timeline.Marks {
		if mk.Kind == MarkExit {
			exits = append(exits, mk)
		}
	}
	if len(exits) != 1 || exits[0].Sched != "root" || exits[0].Stamp != string(m[1]) {
		t.Fatalf("exit marks %+v, want one for root at %s", exits, m[1])
	}
	if !strings.Contains(exits[0].Text, "SCX_EXIT_ERROR") || !strings.Contains(exits[0].Text, "distant sub-sched") {
		t.Errorf("exit mark text %q: want the exit kind and message", exits[0].Text)
	}
	tl := s.Timeline
	if exits[0].Time < tl.Start || exits[0].Time > tl.End {
		t.Errorf("exit at %v outside the timeline %v..%v", exits[0].Time, tl.Start, tl.End)
	}
	detached := map[string]bool{}
	for _, mk := range tl.Marks {
		if mk.Kind == MarkDetach {
			detached[mk.Sched] = true
		}
	}
	if !detached["mid"] || !detached["leaf"] {
		t.Errorf("detach marks %v: want mid and leaf (SCX_EXIT_PARENT is no error exit)", detached)
	}
	if len(tl.SubDisp) == 0 {
		t.Error("no sub-dispatch counts")
	}
	events := map[string]int{}
	for _, e := range tl.Events {
		events[e.Name] += e.Count
	}
	if events["SCX_EV_BYPASS_ACTIVATE"] == 0 {
		t.Errorf("sched_ext event counts %v: want the bypass of the root's enable and exit", events)
	}
	if !ownerKeys(tl)["class:idle"] {
		t.Error("no idle stretch on any CPU")
	}
	// The lanes: the root's tasks until the exit, the fair class after.
	var rootBefore, fairAfter bool
	for _, ln := range tl.CPUs {
		for _, sg := range ln.Segs {
			key := tl.Owners[sg.Owner].Key
			rootBefore = rootBefore || (key == "sched:root@1" && sg.End <= exits[0].Time)
			fairAfter = fairAfter || (key == "class:fair" && sg.Start >= exits[0].Time)
		}
	}
	if !rootBefore || !fairAfter {
		t.Errorf("root's tasks before the exit %v, fair tasks after it %v: want both", rootBefore, fairAfter)
	}
}

// The two-children spec: on a CPU, the tasks of both children run between
// the parent's.
func TestTwoChildrenBetweenTheParentsTasks(t *testing.T) {
	tl := spec(t, build(t, testRun), twoText).Timeline
	for _, child := range []string{"child_a", "child_b"} {
		found := false
		for _, ln := range tl.CPUs {
			var keys []string
			for _, s := range ln.Segs {
				keys = append(keys, tl.Owners[s.Owner].Key)
			}
			found = found || runsBetween(keys, "sched:"+child+"@", "sched:parent@1")
		}
		if !found {
			t.Errorf("no CPU runs %s's tasks between the parent's", child)
		}
	}
	labels := map[string]string{}
	for _, o := range tl.Owners {
		labels[o.Sched] = o.Label
	}
	if labels["child_a"] != "child_a (cgroup /t1)" || labels["parent"] != "parent (root)" {
		t.Errorf("owner labels %v: want cgroup paths from sub_attach", labels)
	}
}

func TestWriteLinksResolve(t *testing.T) {
	r := build(t, testRun)
	out := t.TempDir()
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(out, "specs", "*.html"))
	if len(pages) != 3 {
		t.Fatalf("spec pages %v, want 3", pages)
	}
	href := regexp.MustCompile(`href="([^"#]+)"`)
	for _, p := range append(pages, filepath.Join(out, "index.html")) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range href.FindAllSubmatch(b, -1) {
			target := filepath.Join(filepath.Dir(p), filepath.FromSlash(string(m[1])))
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links to %s: %v", filepath.Base(p), m[1], err)
			}
		}
		for _, ext := range []string{`src="http`, `href="http`, `@import`} {
			if strings.Contains(string(b), ext) {
				t.Errorf("%s loads something from elsewhere (%s)", filepath.Base(p), ext)
			}
		}
	}
}

func TestSpecPageHasLanesAndMarks(t *testing.T) {
	r := build(t, testRun)
	out := t.TempDir()
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	s := spec(t, r, distantText)
	b, err := os.ReadFile(filepath.Join(out, specPath(s)))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	var stamp string
	for _, m := range s.Timeline.Marks {
		if m.Kind == MarkExit {
			stamp = m.Stamp
		}
	}
	for _, want := range []string{
		`data-row="cpu"`, `data-owner="sched:root@1"`, `data-owner="class:fair"`,
		`data-kind="exit" data-sched="root" data-time="` + stamp + `"`,
		`data-kind="subdispatch"`, `class="vl-exit"`, "Around the first error exit",
		"SCX_EXIT_ERROR", "trying to dispatch a distant sub-sched",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the distant spec's page lacks %s", want)
		}
	}
	// Long specs stay small: bucketed lanes, not a rect per switch.
	if len(b) > 160<<10 {
		t.Errorf("page is %d bytes", len(b))
	}
}

// A repeated run's report has one column per run and each spec's pass
// rate; the same real artifacts serve as two runs.
func TestRepeatedRunPassRates(t *testing.T) {
	dir := t.TempDir()
	for _, run := range []string{"run-1", "run-2"} {
		copyDir(t, testRun, filepath.Join(dir, run))
	}
	// In run 2 the failing spec passed.
	p := filepath.Join(dir, "run-2", filepath.Base(spec(t, build(t, testRun), failingText).Dir), "spec.json")
	b, _ := os.ReadFile(p)
	b = regexp.MustCompile(`"state": "failed"`).ReplaceAll(b, []byte(`"state": "passed"`))
	b = regexp.MustCompile(`"class": "exit",`).ReplaceAll(b, nil)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := build(t, dir)
	if !r.Repeated || len(r.Groups) != 2 {
		t.Fatalf("repeated %v with %d groups, want 2 runs", r.Repeated, len(r.Groups))
	}
	for _, row := range r.Rows {
		want := 1.0
		if row.Text == failingText {
			want = 0.5
		}
		if row.Rate != want {
			t.Errorf("%s: pass rate %v, want %v", row.Text, row.Rate, want)
		}
	}
	out := t.TempDir()
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if !strings.Contains(string(idx), "50% (1/2)") || !strings.Contains(string(idx), "specs/run-2/") {
		t.Error("the index lacks the pass rate or the second run's pages")
	}
}

func TestCoverageIsLinked(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, testRun, filepath.Join(dir, "artifacts"))
	page := filepath.Join(dir, "coverage", "files", "kernel", "sched", "ext", "ext.c.html")
	if err := os.MkdirAll(filepath.Dir(page), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(page, []byte("<html></html>"), 0o644)
	r := build(t, filepath.Join(dir, "artifacts"))
	out := filepath.Join(dir, "report")
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if !strings.Contains(string(idx), `href="../coverage/files/kernel/sched/ext/ext.c.html"`) {
		t.Error("the index does not link the coverage page")
	}
}

func TestNothingTested(t *testing.T) {
	r := build(t, t.TempDir())
	out := t.TempDir()
	if err := Write(r, out); err != nil {
		t.Fatal(err)
	}
	idx, _ := os.ReadFile(filepath.Join(out, "index.html"))
	if !strings.Contains(string(idx), "the kernel was not tested") {
		t.Error("an empty run's report does not say that nothing was tested")
	}
	if _, err := Build(filepath.Join(t.TempDir(), "missing"), Options{}); err == nil {
		t.Error("a missing directory is no error")
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
