package mutate

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/diff"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// allLines returns every line number of src.
func allLines(src string) []int {
	var out []int
	for i := range strings.Count(src, "\n") + 1 {
		out = append(out, i+1)
	}
	return out
}

func generate(t *testing.T, name string) (string, []Mutant) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Generate("kernel/sched/ext/"+name, string(data), allLines(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data), ms
}

// TestGolden compares the mutants of every line of the snippets (ID and
// description) with testdata/<snippet>.mutants: comments, strings,
// character literals and macro definitions get none; multi-line
// conditions get theirs on the line of their keyword and operator.
func TestGolden(t *testing.T) {
	for _, name := range []string{"tricky.c", "distant.c"} {
		_, ms := generate(t, name)
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%s  %s\n", strings.TrimPrefix(m.ID, "kernel/sched/ext/"), m.Description)
		}
		golden := filepath.Join("testdata", name+".mutants")
		if *update {
			os.WriteFile(golden, []byte(b.String()), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("%s: mutants differ from %s (go test -update to rewrite):\n%s", name, golden, b.String())
		}
	}
}

// TestDistantCheck pins the mutants of the distant-dispatch check in
// scx_bpf_sub_dispatch (ext.c:9448 in Debian's 7.2.13; line 31 of the
// snippet), the check the distant specs exist for.
func TestDistantCheck(t *testing.T) {
	_, ms := generate(t, "distant.c")
	want := map[string]string{
		"kernel/sched/ext/distant.c:31:negate-condition": `@@ -28,7 +28,7 @@
 	if (unlikely(!child))
 		return false;
 
-	if (unlikely(scx_parent(child) != parent)) {
+	if (!(unlikely(scx_parent(child) != parent))) {
 		scx_error(parent, "trying to dispatch a distant sub-sched on cgroup %llu",
 			  cgroup_id);
 		return false;
`,
		"kernel/sched/ext/distant.c:32:remove-call": `@@ -29,8 +29,6 @@
 		return false;
 
 	if (unlikely(scx_parent(child) != parent)) {
-		scx_error(parent, "trying to dispatch a distant sub-sched on cgroup %llu",
-			  cgroup_id);
 		return false;
 	}
 
`,
	}
	for _, m := range ms {
		w, ok := want[m.ID]
		if !ok {
			continue
		}
		delete(want, m.ID)
		header := "--- a/kernel/sched/ext/distant.c\n+++ b/kernel/sched/ext/distant.c\n"
		if m.Diff != header+w {
			t.Errorf("%s: diff\n%s\nwant\n%s%s", m.ID, m.Diff, header, w)
		}
	}
	for id := range want {
		t.Errorf("no mutant %s", id)
	}
	for _, m := range ms {
		if m.ID == "kernel/sched/ext/distant.c:31:swap-relational" {
			t.Errorf("%s: swapping the condition's only comparison is the mutant negate-condition already is", m.ID)
		}
	}
}

// TestDiffsApplyAndCompile applies every mutant's diff to a copy of its
// snippet with patch -p1 --fuzz=0, as the kernel build does, checks it
// gives the mutated text, and compiles the result against stubs of the
// kernel's headers (testdata/include): every mutant is a compilable edit.
func TestDiffsApplyAndCompile(t *testing.T) {
	for _, tool := range []string{"patch", "gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	inc, err := filepath.Abs("testdata/include")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tricky.c", "distant.c"} {
		src, ms := generate(t, name)
		for _, m := range ms {
			ps, err := diff.Parse(m.ID, m.Diff)
			if err != nil || len(ps) != 1 || len(ps[0].Files) != 1 || ps[0].Files[0].Path() != m.File {
				t.Errorf("%s: diff does not parse as one file's: %v", m.ID, err)
				continue
			}
			dir := t.TempDir()
			path := filepath.Join(dir, m.File)
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("patch", "-p1", "--fuzz=0", "--no-backup-if-mismatch")
			cmd.Dir, cmd.Stdin = dir, strings.NewReader(m.Diff)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: patch: %v\n%s\n%s", m.ID, err, out, m.Diff)
				continue
			}
			cmd = exec.Command("gcc", "-fsyntax-only", "-I", inc, "-include", "linux/kernel.h", path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s (%s) does not compile: %v\n%s\n%s", m.ID, m.Description, err, out, m.Diff)
			}
		}
	}
}

func TestUnifiedDiffEdges(t *testing.T) {
	for _, tc := range []struct{ old, new, want string }{
		{"a\nb\n", "a\nc\n", "@@ -1,2 +1,2 @@\n a\n-b\n+c\n"},
		{"a\nb", "a\nc", "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\n6\n7\n8\n9\n", "@@ -2,7 +2,6 @@\n 2\n 3\n 4\n-5\n 6\n 7\n 8\n"},
	} {
		got := unifiedDiff("f", tc.old, tc.new)
		if want := "--- a/f\n+++ b/f\n" + tc.want; got != want {
			t.Errorf("%q → %q:\n%s\nwant\n%s", tc.old, tc.new, got, want)
		}
	}
}

func TestBump(t *testing.T) {
	for _, tc := range []struct {
		in   string
		d    int
		want string
	}{
		{"32", 1, "33"}, {"32", -1, "31"}, {"0", -1, ""}, {"0", 1, "1"}, {"0x1f", 1, "0x20"},
		{"10UL", 1, "(10UL + 1)"}, {"MAX", -1, "(MAX - 1)"}, {"010", 1, "(010 + 1)"},
	} {
		if got := bump(tc.in, tc.d); got != tc.want {
			t.Errorf("bump(%s, %d) = %q, want %q", tc.in, tc.d, got, tc.want)
		}
	}
}
