package build

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/kernel/debian"
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
	ps, err := LoadPatches([]string{dir}, "7.2")
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
	ps, err := LoadPatches([]string{dir}, "7.2")
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
	ps, err := LoadPatches([]string{filepath.Join(dir, "series.mbox")}, "7.2")
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
		_, err := LoadPatches([]string{tc.path}, "7.2")
		if !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrPatch saying %q", tc.path, err, tc.want)
		}
	}
}

// The project's own test-only patch is well-formed for each series: small,
// saying it is for testing only, the same on disk as embedded, and changing
// the files scx_bpf_sub_dispatch() and the sched_ext parameters live in.
func TestSelfSubDispatchPatch(t *testing.T) {
	const dir = "../../fixtures/kernel-patches"
	files := map[string][]string{
		"7.2": {"kernel/sched/ext/ext.c"},
		"7.3": {"kernel/sched/ext/ext.c", "kernel/sched/ext/sub.c"},
	}
	entries, _ := os.ReadDir(dir)
	if got := seriesDirs(entries); !slices.Equal(got, slices.Sorted(maps.Keys(files))) {
		t.Errorf("series %q, want %q", got, slices.Sorted(maps.Keys(files)))
	}
	for series, want := range files {
		embedded, err := TestPatches(nil, series)
		if err != nil {
			t.Fatal(err)
		}
		onDisk, err := LoadPatches([]string{dir}, series)
		if err != nil {
			t.Fatal(err)
		}
		if len(embedded) != 1 || len(onDisk) != 1 || !slices.Equal(embedded[0].Files, want) {
			t.Fatalf("%s: patches %+v", series, embedded)
		}
		p := embedded[0]
		if !p.Test || p.Name != series+"/0001-sched_ext-test-only-self-sub-dispatch.patch" || !bytes.Equal(p.Data, onDisk[0].Data) {
			t.Errorf("%s: embedded patch %s (test %v) differs from %s", series, p.Name, p.Test, onDisk[0].Name)
		}
		text := string(p.Data)
		added := 0
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++") {
				added++
			}
		}
		if added > 20 {
			t.Errorf("%s: %d added lines; the patch should stay small", series, added)
		}
		for _, want := range []string{"TEST ONLY", "test_self_sub_dispatch, scx_test_self_sub_dispatch, bool, 0644",
			"scx_dispatch_sched(parent", "Applies to Debian's linux-source-" + series} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: the patch lacks %q", series, want)
			}
		}
		// The self path comes before the child lookup (and, on 7.3, the
		// child's caps check).
		if i, j := strings.Index(text, "scx_dispatch_sched(parent"), strings.Index(text, " \tchild = scx_find_sub_sched"); i < 0 || j < i {
			t.Errorf("%s: the self path does not come before the child lookup", series)
		}
	}
	if _, err := TestPatches(nil, "6.12"); !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "exists for kernel series 7.2, 7.3, not for this tree's 6.12") ||
		!strings.Contains(err.Error(), "--no-test-patch") {
		t.Errorf("a series without a test patch: err = %v", err)
	}
}

// The test-only patch applies exactly (patch --fuzz=0) to the Debian
// sources of its series, where they are unpacked in the user's cache
// (scxcheck kernel build [--series S] does that); to a copy of the files it
// touches.
func TestSelfSubDispatchPatchAppliesToDebianSources(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch command")
	}
	cache, err := debian.DefaultCacheDir()
	if err != nil {
		t.Skip(err)
	}
	tried := 0
	for _, series := range []string{"7.2", "7.3"} {
		tree := newestTree(filepath.Join(cache, "build", "trees"), "linux-source-"+series)
		if tree == nil {
			continue
		}
		tried++
		ps, err := TestPatches(nil, series)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		for _, f := range ps[0].Files {
			data, err := os.ReadFile(filepath.Join(tree.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
			os.WriteFile(filepath.Join(dir, f), data, 0o644)
		}
		cmd := exec.Command("patch", "-p1", "--fuzz=0", "--dry-run", "--batch", "--forward")
		cmd.Dir, cmd.Stdin = dir, bytes.NewReader(ps[0].Data)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not apply to %s: %v\n%s", ps[0].Name, tree.Origin, err, out)
		}
	}
	if tried == 0 {
		t.Skip("no Debian linux-source tree unpacked in " + cache)
	}
}

// A directory of per-series subdirectories stands for the tree's series;
// one without it is an error listing what there is.
func TestLoadPatchesChoosesTheTreesSeries(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"7.2/0001-a.patch":  diffOf("ext.c"),
		"7.3/0001-a.patch":  diffOf("sub.c"),
		"7.3/0002-b.patch":  diffOf("ext.c"),
		"7.10/0001-a.patch": diffOf("x.c"),
		"notes/README":      "",
		"README":            "per series",
	})
	ps, err := LoadPatches([]string{dir}, "7.3")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0001-a.patch", "0002-b.patch"}; !slices.Equal(names(ps), want) || !slices.Equal(ps[0].Files, []string{"sub.c"}) {
		t.Errorf("7.3: patches %q (%q), want %q of 7.3/", names(ps), ps[0].Files, want)
	}
	_, err = LoadPatches([]string{dir}, "7.4")
	if !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "has patches for kernel series 7.2, 7.3, 7.10, none for this tree's 7.4") {
		t.Errorf("7.4: err = %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("7.4: the error is not one line: %q", err)
	}

	os.WriteFile(filepath.Join(dir, "0001-top.patch"), []byte(diffOf("a.c")), 0o644)
	if _, err := LoadPatches([]string{dir}, "7.3"); !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "holds both patches and per-series directories") {
		t.Errorf("patches beside the series: err = %v", err)
	}
}

func TestCheckSeries(t *testing.T) {
	for _, s := range []string{"7.2", "7.3", "6.12", "10.0"} {
		if err := CheckSeries(s); err != nil {
			t.Errorf("CheckSeries(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "7", "7.3.4", "v7.3", "7.x", "7.3-rc1", " 7.3"} {
		if err := CheckSeries(s); err == nil {
			t.Errorf("CheckSeries(%q) accepted it", s)
		}
	}
	for v, want := range map[string]string{"7.3.4": "7.3", "7.2.0-fake": "7.2", "7.4-rc1": "7.4", "foo": ""} {
		if got := Series(v); got != want {
			t.Errorf("Series(%q) = %q, want %q", v, got, want)
		}
	}
}
