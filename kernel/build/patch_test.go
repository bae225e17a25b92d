package build

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func diffOf(file string) string {
	return "--- a/" + file + "\n+++ b/" + file + "\n@@ -1 +1 @@\n-x\n+y\n"
}

func names(ps []Patch) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestLoadPatchesFromADirectoryInNameOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"0002-second.patch": diffOf("b.c"),
		"0001-first.patch":  diffOf("a.c"),
		"0003-third.diff":   diffOf("c.c"),
		"README":            "not a patch",
	})
	ps, err := LoadPatches([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001-first.patch", "0002-second.patch", "0003-third.diff"}; !slices.Equal(names(ps), want) {
		t.Errorf("patches %q, want %q", names(ps), want)
	}
	if !slices.Equal(ps[0].Files, []string{"a.c"}) {
		t.Errorf("files %q", ps[0].Files)
	}
}

func TestLoadPatchesFollowsASeriesFile(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"series":  "# quilt\nz.patch\na.patch -p1\n",
		"a.patch": diffOf("a.c"),
		"z.patch": diffOf("z.c"),
	})
	ps, err := LoadPatches([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"z.patch", "a.patch"}; !slices.Equal(names(ps), want) {
		t.Errorf("patches %q, want %q", names(ps), want)
	}
}

func TestLoadPatchesSplitsAnMbox(t *testing.T) {
	mbox := "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 0/2] cover\n\nno diff here\n" +
		"From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 1/2] sched_ext: one\n\n---\n" + diffOf("kernel/sched/ext/ext.c") +
		"From 2222222222222222222222222222222222222222 Mon Sep 17 00:00:00 2001\nSubject: [PATCH 2/2] sched_ext: two\n\n---\n" +
		"--- /dev/null\n+++ b/new.c\n@@ -0,0 +1 @@\n+n\n" + "--- a/old.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-o\n"
	dir := writeTree(t, map[string]string{"series.mbox": mbox})
	ps, err := LoadPatches([]string{filepath.Join(dir, "series.mbox")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"series.mbox [2/3] sched_ext: one", "series.mbox [3/3] sched_ext: two"}
	if !slices.Equal(names(ps), want) {
		t.Errorf("patches %q, want %q", names(ps), want)
	}
	if len(ps) == 2 && !slices.Equal(ps[1].Files, []string{"new.c", "old.c"}) {
		t.Errorf("files of the second %q", ps[1].Files)
	}
}

func TestLoadPatchesErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{"notes.patch": "no diff at all\n", "empty/README": ""})
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "nosuch.patch"), "no such file"},
		{filepath.Join(dir, "notes.patch"), "holds no diff"},
		{filepath.Join(dir, "empty"), "holds no *.patch"},
	} {
		_, err := LoadPatches([]string{tc.path})
		if !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrPatch saying %q", tc.path, err, tc.want)
		}
	}
}

// The project's own test-only patch is well-formed: one diff of ext.c, and
// it says it is for testing only.
func TestSelfSubDispatchPatch(t *testing.T) {
	const path = "../../fixtures/kernel-patches/0001-sched_ext-test-only-self-sub-dispatch.patch"
	ps, err := LoadPatches([]string{filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !slices.Equal(ps[0].Files, []string{"kernel/sched/ext/ext.c"}) {
		t.Fatalf("patches %+v", ps)
	}
	text, _ := os.ReadFile(path)
	added := 0
	for _, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++") {
			added++
		}
	}
	if added > 20 {
		t.Errorf("%d added lines; the patch should stay small", added)
	}
	for _, want := range []string{"TEST ONLY", "test_self_sub_dispatch, scx_test_self_sub_dispatch, bool, 0644", "scx_dispatch_sched(parent"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the patch lacks %q", want)
		}
	}
}
