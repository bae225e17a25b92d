package coverage_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/coverage/diff"
	"github.com/scxcheck/scxcheck/coverage/gcov"
)

func patches(t *testing.T, name string) []*diff.Patch {
	t.Helper()
	ps, err := diff.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// where returns a hunk's added lines as "file:line" ("-" for one not
// found).
func where(h *coverage.Hunk) []string {
	var out []string
	for _, a := range h.Added {
		if a.Line == 0 {
			out = append(out, "-")
			continue
		}
		out = append(out, h.File+":"+strconv.Itoa(a.Line))
	}
	return out
}

func TestLines(t *testing.T) {
	l := coverage.Lines{}
	l.Add("b.c", 5, 3, 5)
	l.Add("a.c", 1)
	l.Add("b.c", 4)
	if !reflect.DeepEqual(l["b.c"], []int{3, 4, 5}) || !reflect.DeepEqual(l.Files(), []string{"a.c", "b.c"}) || l.Len() != 4 {
		t.Errorf("lines %v", l)
	}
	if !l.Contains("b.c", 4) || l.Contains("b.c", 6) || l.Contains("c.c", 1) {
		t.Error("Contains")
	}
	cov := gcov.New()
	cov.Files["b.c"] = &gcov.File{Path: "b.c", Lines: map[int]*gcov.Line{3: {Count: 0}, 5: {Count: 7}, 9: {Count: 1}}}
	if got := l.Executable(cov); !reflect.DeepEqual(got, coverage.Lines{"b.c": {3, 5}}) {
		t.Errorf("executable %v", got)
	}
}

func TestFromPatches(t *testing.T) {
	ps := patches(t, "series.mbox")
	// The first patch alone: the lines its headers say.
	c := coverage.FromPatches(ps[0])
	want := coverage.Lines{"kernel/sched/ext.c": {8, 9, 10, 11, 12, 20}, "kernel/sched/new.c": {1, 2, 3, 4}}
	if got := c.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("patch 1: %v, want %v", got, want)
	}
	// Both: the second renames ext.c to ext/ext.c and rewrites "return
	// 3;", a line of the first; the first's other lines move with the
	// file.
	c = coverage.FromPatches(ps...)
	want = coverage.Lines{"kernel/sched/ext/ext.c": {8, 9, 10, 11, 12, 20}, "kernel/sched/new.c": {1, 2, 3, 4}, "nonl.txt": {2, 3}, "with space.c": {2}}
	if got := c.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("series: %v\nwant %v", got, want)
	}
	h := c.Hunks[0]
	if h.Status != coverage.Fuzzy || h.Added[2].Match != coverage.Missing || h.File != "kernel/sched/ext/ext.c" || !strings.Contains(h.Note, "changed again") {
		t.Errorf("first hunk after the series: %+v", h)
	}
	st := c.Stats()
	if st.Hunks != 6 || st.RemovesOnly != 1 || st.Located != 6 || st.Added != 14 || st.Found != 13 {
		t.Errorf("stats %+v", st)
	}
}

// Then moves the first patch's lines through the second (applied on top,
// as scxcheck's test-only patch is after the user's) without adding the
// second's hunks: the first's lines where they are after both, less line 10,
// which the second rewrote (in FromPatches of both it is the second's).
func TestThen(t *testing.T) {
	ps := patches(t, "series.mbox")
	c := coverage.FromPatches(ps[0])
	c.Then(ps[1])
	if len(c.Hunks) != len(coverage.FromPatches(ps[0]).Hunks) {
		t.Fatalf("Then added hunks: %d", len(c.Hunks))
	}
	want := coverage.Lines{"kernel/sched/ext/ext.c": {8, 9, 11, 12, 20}, "kernel/sched/new.c": {1, 2, 3, 4}}
	if got := c.Lines(); !reflect.DeepEqual(got, want) {
		t.Errorf("after Then: %v, want %v", got, want)
	}
	if h := c.Hunks[0]; h.Status != coverage.Fuzzy || h.Added[2].Match != coverage.Missing || !strings.Contains(h.Note, "changed again") {
		t.Errorf("first hunk: %+v", h)
	}
	// A hunk that only moved keeps its status and confidence.
	if h := c.Hunks[len(c.Hunks)-1]; h.Status != coverage.Exact || h.Confidence != 1 {
		t.Errorf("last hunk: %+v", h)
	}
}

func TestFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@e.st"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	// Lines long enough for git to see the move as a rename.
	lines := func(s string) string {
		var b strings.Builder
		for _, l := range strings.Split(s, " ") {
			b.WriteString("\tline " + l + " of the scheduler, long enough for git's rename detection;\n")
		}
		return b.String()
	}
	write("kernel/sched/ext.c", lines("a b c d e f g h"))
	git("add", "-A")
	git("commit", "-qm", "base")
	git("tag", "base")
	// Two commits: one adds lines, the next moves the file and changes
	// one of them; the range's lines are those of its end.
	write("kernel/sched/ext.c", lines("a b NEW1 c d e NEW2 f g h"))
	git("commit", "-qam", "one")
	os.MkdirAll(filepath.Join(dir, "kernel/sched/ext"), 0o755)
	git("mv", "kernel/sched/ext.c", "kernel/sched/ext/ext.c")
	write("kernel/sched/ext/ext.c", lines("a b NEW1 c d e NEW2-changed f g h"))
	git("commit", "-qam", "two")
	c, err := coverage.FromGit(context.Background(), dir, "base", "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lines(); !reflect.DeepEqual(got, coverage.Lines{"kernel/sched/ext/ext.c": {3, 7}}) {
		t.Errorf("base..HEAD: %v", got)
	}
	// The work tree against HEAD.
	write("kernel/sched/ext/ext.c", lines("a b NEW1 c d e NEW2-changed f g h i"))
	c, err = coverage.FromGit(context.Background(), dir, "HEAD", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lines(); !reflect.DeepEqual(got, coverage.Lines{"kernel/sched/ext/ext.c": {11}}) {
		t.Errorf("work tree: %v", got)
	}
	if _, err := coverage.FromGit(context.Background(), dir, "nosuchrev", "HEAD"); err == nil {
		t.Error("a bad revision: no error")
	}
}

func TestLocateApplied(t *testing.T) {
	// The tree contains the first patch: every hunk is where its header
	// says, the clean patch and the mangled one alike.
	for _, name := range []string{"series.mbox", "mangled.txt"} {
		c, err := coverage.Locate(os.DirFS("testdata/applied"), patches(t, name)[0])
		if err != nil {
			t.Fatal(err)
		}
		want := coverage.Lines{"kernel/sched/ext.c": {8, 9, 10, 11, 12, 20}}
		if name == "series.mbox" {
			want["kernel/sched/new.c"] = []int{1, 2, 3, 4}
		}
		if got := c.Lines(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
		for _, h := range c.Hunks {
			if h.Status != coverage.Exact || h.Confidence != 1 || h.Note != "" {
				t.Errorf("%s: hunk %s %s: %s, confidence %.2f, %q", name, h.Path, h.Header, h.Status, h.Confidence, h.Note)
			}
		}
	}
}

func TestLocateMoved(t *testing.T) {
	// The tree has moved ext.c to ext/ext.c, and later changes rewrote
	// three(): a comment before it, a local variable, "return v;". A
	// decoy ext/idle.c holds the same sum() as ext.c.
	c, err := coverage.Locate(os.DirFS("testdata/moved"), patches(t, "mangled.txt")...)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hunks) != 2 {
		t.Fatalf("%d hunks", len(c.Hunks))
	}
	h := c.Hunks[0]
	// "static int three(void)", "{", "return 3;" (now "return v;"), "}",
	// the blank line.
	if got, want := where(h), []string{"kernel/sched/ext/ext.c:9", "kernel/sched/ext/ext.c:10", "kernel/sched/ext/ext.c:13", "kernel/sched/ext/ext.c:14", "kernel/sched/ext/ext.c:15"}; !reflect.DeepEqual(got, want) {
		t.Errorf("hunk 1 at %v, want %v", got, want)
	}
	if h.Status != coverage.Fuzzy || h.Added[2].Match != coverage.Changed || h.Confidence < 0.8 || h.Confidence >= 1 || !strings.Contains(h.Note, "found in kernel/sched/ext/ext.c") {
		t.Errorf("hunk 1: %s, %.2f, %q, %+v", h.Status, h.Confidence, h.Note, h.Added)
	}
	// The second hunk goes where the first went, not to the decoy.
	h = c.Hunks[1]
	if got := where(h); !reflect.DeepEqual(got, []string{"kernel/sched/ext/ext.c:28"}) || h.Status != coverage.Exact {
		t.Errorf("hunk 2 at %v (%s), want ext/ext.c:28", got, h.Status)
	}
}

// tree is a kernel-like file after later changes.
const tree = `static void scx_dispatch(struct rq *rq)
{
	struct scx_sched *sch = scx_root;
	s32 cpu = cpu_of(rq);
	enum scx_verdict verdict;

	lockdep_assert_rq_held(rq);
	verdict = scx_dispatch_sched(sch, rq, prev, false);
	if (verdict != SCX_DSP_NONE)
		goto has_tasks;

	if (rq->scx.local_dsq.nr) {
		pr_debug("local tasks on cpu %d\n", cpu);
		goto has_tasks;
	}

	scx_kick_cpu(sch, cpu, SCX_KICK_IDLE);
	return;
has_tasks:
	rq->scx.flags |= SCX_RQ_BAL_KEEP;
}

static void scx_other(void)
{
	pr_info("unrelated\n");
}
`

func TestLocateFuzzy(t *testing.T) {
	fsys := fstest.MapFS{"kernel/sched/ext.c": {Data: []byte(tree)}}
	// The posted patch: since then a line was added inside the hunk
	// ("enum scx_verdict verdict;"), one added line was rewritten (the
	// dispatch call), one was removed (the pr_warn), and the context
	// after the hunk changed (the goto became a block).
	const patch = `--- a/kernel/sched/ext.c
+++ b/kernel/sched/ext.c
@@ -1,9 +1,13 @@
 static void scx_dispatch(struct rq *rq)
 {
 	struct scx_sched *sch = scx_root;
 	s32 cpu = cpu_of(rq);
 
 	lockdep_assert_rq_held(rq);
+	if (scx_dispatch_sched(sch, rq, prev, false))
+		goto has_tasks;
+
+	pr_warn("nothing dispatched on cpu %d\n", cpu);
 	if (rq->scx.local_dsq.nr)
 		goto has_tasks;
 
`
	ps, err := diff.Parse("fuzzy.diff", patch)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coverage.Locate(fsys, ps...)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hunks[0]
	if got, want := where(h), []string{"kernel/sched/ext.c:8", "kernel/sched/ext.c:10", "kernel/sched/ext.c:11", "-"}; !reflect.DeepEqual(got, want) {
		t.Errorf("added lines at %v, want %v", got, want)
	}
	matches := []coverage.Match{h.Added[0].Match, h.Added[1].Match, h.Added[2].Match, h.Added[3].Match}
	if !reflect.DeepEqual(matches, []coverage.Match{coverage.Changed, coverage.Same, coverage.Same, coverage.Missing}) {
		t.Errorf("matches %v", matches)
	}
	if h.Status != coverage.Fuzzy || h.Confidence < 0.5 || h.Confidence > 0.9 {
		t.Errorf("status %s, confidence %.2f", h.Status, h.Confidence)
	}
}

func TestLocateNotLocated(t *testing.T) {
	fsys := fstest.MapFS{"kernel/sched/ext.c": {Data: []byte(tree)}}
	ps, err := diff.Parse("gone.diff", `--- a/kernel/sched/ext.c
+++ b/kernel/sched/ext.c
@@ -20,3 +20,6 @@ static void scx_other(void)
 {
 	pr_info("unrelated\n");
+	if (scx_enabled())
+		scx_tick_all(SCX_TICK_FORCE);
+	scx_watchdog_touch();
 }
--- a/kernel/sched/gone.c
+++ b/kernel/sched/gone.c
@@ -1,1 +1,2 @@
 int x;
+int y;
@@ -9,1 +10,0 @@
-int z;
`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coverage.Locate(fsys, ps...)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Hunks) != 3 {
		t.Fatalf("%d hunks", len(c.Hunks))
	}
	// The context is there, the added lines are not: not located, and
	// said so.
	for _, h := range c.Hunks[:2] {
		if h.Status != coverage.NotLocated || h.File != "" || h.Note == "" || h.Confidence != 0 {
			t.Errorf("hunk %s %s: %s in %q, %q", h.Path, h.Header, h.Status, h.File, h.Note)
		}
	}
	if c.Hunks[2].Status != coverage.RemovesOnly {
		t.Errorf("removal: %s", c.Hunks[2].Status)
	}
	st := c.Stats()
	if st.Hunks != 2 || st.NotLocated != 2 || st.Found != 0 || st.Added != 4 || st.RemovesOnly != 1 || c.Lines().Len() != 0 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(st.String(), "0 of 2 hunks located") {
		t.Errorf("stats say %q", st)
	}
}

func TestLocateAmbiguous(t *testing.T) {
	// The hunk's lines are twice in the file: located, with the doubt
	// said and the confidence halved.
	body := "void a(void)\n{\n\tscx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);\n\tscx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, 0);\n}\n"
	fsys := fstest.MapFS{"x.c": {Data: []byte(body + "\n" + body)}}
	ps, _ := diff.Parse("a.diff", "--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,4 @@\n {\n \tscx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);\n+\tscx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, 0);\n }\n")
	c, err := coverage.Locate(fsys, ps...)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hunks[0]
	if h.Status != coverage.Exact || h.Confidence != 0.5 || !strings.Contains(h.Note, "almost as well") {
		t.Errorf("%s, %.2f, %q", h.Status, h.Confidence, h.Note)
	}
}

func TestLocateNewAndDeletedFiles(t *testing.T) {
	fsys := fstest.MapFS{"kernel/sched/new.c": {Data: []byte("int added(void)\n{\n\treturn 0;\n}\n")}}
	ps, _ := diff.Parse("nd.diff", `diff --git a/kernel/sched/new.c b/kernel/sched/new.c
new file mode 100644
--- /dev/null
+++ b/kernel/sched/new.c
@@ -0,0 +1,4 @@
+int added(void)
+{
+	return 0;
+}
diff --git a/old.c b/old.c
deleted file mode 100644
--- a/old.c
+++ /dev/null
@@ -1 +0,0 @@
-int old;
`)
	c, err := coverage.Locate(fsys, ps...)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Lines(); !reflect.DeepEqual(got, coverage.Lines{"kernel/sched/new.c": {1, 2, 3, 4}}) || c.Hunks[0].Status != coverage.Exact {
		t.Errorf("new file: %v %s", got, c.Hunks[0].Status)
	}
	if c.Hunks[1].Status != coverage.RemovesOnly {
		t.Errorf("deleted file: %s", c.Hunks[1].Status)
	}
}

// The real case: the seed patch as a web archive shows it, on Debian's
// linux-source-7.2, where kernel/sched/ext.c became kernel/sched/ext/ext.c
// and later patches changed the code around and inside the hunks.
const (
	seedPatch = "diff/testdata/seed-mangled.txt"
	seedTree  = "/root/.cache/scxcheck/build/trees/linux-source-7.2_7.2.13-1"
)

func TestLocateSeed(t *testing.T) {
	if _, err := os.Stat(filepath.Join(seedTree, "kernel/sched/ext/ext.c")); err != nil {
		t.Skipf("the 7.2 tree is not unpacked at %s (scxcheck kernel build unpacks it)", seedTree)
	}
	ps, err := diff.ReadFile(seedPatch)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coverage.Locate(os.DirFS(seedTree), ps...)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	t.Logf("seed patch on 7.2: %s", st)
	// 15 hunks: 13 located; the two not located are in tools/ (a kfunc
	// declaration that moved to compat.bpf.h, and qmap's array that moved
	// into a struct in scx_qmap.h).
	if st.Hunks != 15 || st.Located != 13 || st.Found < 125 {
		t.Errorf("stats %+v", st)
	}
	for _, h := range c.Hunks {
		if strings.HasPrefix(h.Path, "kernel/") && (h.Status == coverage.NotLocated || h.File != strings.Replace(h.Path, "sched/ext.c", "sched/ext/ext.c", 1)) {
			t.Errorf("kernel hunk %s %s: %s in %q", h.Path, h.Header, h.Status, h.File)
		}
	}
	// Spot checks against the tree: the kfunc the patch adds, and the
	// #ifdef'd recursion handler.
	lines := c.Lines()["kernel/sched/ext/ext.c"]
	for _, want := range []int{8222, 8231, 9433, 9446} {
		if !contains(lines, want) {
			t.Errorf("ext/ext.c:%d not among the changed lines", want)
		}
	}
}

func contains(s []int, n int) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}
