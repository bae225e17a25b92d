package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/internal/kerneltest"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/cache"
	"github.com/scxcheck/scxcheck/kernel/kconfig"
)

// fakeMake is a Runner that stands in for the kernel's make, the compiler,
// pahole and objcopy, so that Build runs in milliseconds on the synthetic
// tree of kerneltest.WriteTree. Its olddefconfig drops, as the real one does,
// every symbol the tree's Kconfig does not define or whose dependencies are
// off (read with kernel/kconfig's Kconfig reader), to a fixpoint. patch and
// git run for real.
type fakeMake struct {
	mu      sync.Mutex
	pahole  string // what `pahole --version` prints
	builds  int    // kernel builds (make vmlinux bzImage)
	relinks int    // builds that found no linked vmlinux in obj
	targets []string
	noGelf  bool // the compiler does not find <gelf.h>
	// profiled counts the kernel builds asked to profile build_policy.o.
	profiled int
}

func (f *fakeMake) Run(ctx context.Context, c *Cmd) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := c.Stdout
	if out == nil {
		out = io.Discard
	}
	switch {
	case c.Name == "make":
		return f.make(c.Args, out)
	case c.Name == "gcc" && slices.Contains(c.Args, "--version"):
		fmt.Fprintln(out, "gcc (Fake) 12.2.0")
		return nil
	case c.Name == "gcc" && slices.Contains(c.Args, "-dumpfullversion"):
		fmt.Fprintln(out, "12.2.0")
		return nil
	case c.Name == "gcov-12" && slices.Contains(c.Args, "--version"):
		fmt.Fprintln(out, "gcov (Fake) 12.2.0")
		return nil
	case c.Name == "gcc":
		in, _ := io.ReadAll(c.Stdin)
		if f.noGelf && bytes.Contains(in, []byte("gelf.h")) {
			return errors.New("exit status 1")
		}
		return nil
	case c.Name == "ld":
		fmt.Fprintln(out, "GNU ld (Fake) 2.40")
		return nil
	case strings.HasSuffix(c.Name, "pahole"):
		fmt.Fprintln(out, f.pahole)
		return nil
	case c.Name == "objcopy":
		data, err := os.ReadFile(c.Args[len(c.Args)-2])
		if err != nil {
			return err
		}
		return os.WriteFile(c.Args[len(c.Args)-1], data, 0o644)
	case c.Name == "patch", c.Name == "git":
		return ExecRunner{}.Run(ctx, c)
	}
	return fmt.Errorf("fakeMake: unexpected command %s", c)
}

func (f *fakeMake) make(args []string, out io.Writer) error {
	var src, obj string
	var targets []string
	profile := slices.Contains(args, "GCOV_PROFILE_build_policy.o=y")
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-C":
			src = args[i+1]
			i++
		case strings.HasPrefix(a, "O="):
			obj = strings.TrimPrefix(a, "O=")
		case strings.Contains(a, "=") || strings.HasPrefix(a, "-j"):
		default:
			targets = append(targets, a)
		}
	}
	f.targets = append(f.targets, strings.Join(targets, " "))
	cfg := filepath.Join(obj, ".config")
	switch t := strings.Join(targets, " "); t {
	case "tinyconfig", "defconfig", "allnoconfig":
		return os.WriteFile(cfg, []byte("CONFIG_X86=y\nCONFIG_64BIT=y\n# CONFIG_BAZ is not set\nCONFIG_NUM=2\n"), 0o644)
	case "olddefconfig":
		return f.olddefconfig(src, cfg)
	case "vmlinux bzImage":
		f.builds++
		if _, err := os.Stat(filepath.Join(src, "BROKEN")); err == nil {
			fmt.Fprintln(out, "  CC      kernel/fork.o")
			fmt.Fprintln(out, "kernel/fork.c:1:1: error: this tree is broken")
			fmt.Fprintln(out, "make: *** [Makefile:2: kernel] Error 1")
			return errors.New("exit status 2")
		}
		if _, err := os.Stat(filepath.Join(obj, "vmlinux.unstripped")); err != nil {
			f.relinks++
		}
		for _, l := range []string{"  SYNC    include/config/auto.conf", "  CC      kernel/fork.o", "  LD      vmlinux.o", "  BTF     .tmp_vmlinux1", "  BUILD   arch/x86/boot/bzImage"} {
			fmt.Fprintln(out, l)
		}
		// A profiled object leaves its notes, and kbuild its dependencies.
		notes := filepath.Join(obj, "kernel/sched/build_policy.gcno")
		os.Remove(notes)
		if profile {
			f.profiled++
			os.MkdirAll(filepath.Dir(notes), 0o755)
			os.WriteFile(notes, []byte("oncg"), 0o644)
			deps := fmt.Sprintf("savedcmd_kernel/sched/build_policy.o := gcc ...\n\n"+
				"source_kernel/sched/build_policy.o := %[1]s/kernel/fork.c\n\n"+
				"deps_kernel/sched/build_policy.o := \\\n  %[1]s/Makefile \\\n    $(wildcard include/config/BAZ) \\\n"+
				"  include/generated/autoconf.h \\\n\nkernel/sched/build_policy.o: $(deps_kernel/sched/build_policy.o)\n", src)
			os.WriteFile(filepath.Join(obj, "kernel/sched/.build_policy.o.cmd"), []byte(deps), 0o644)
		}
		elf := kerneltest.ELF("7.2.0-fake", true)
		bz := kerneltest.BzImage(kerneltest.BzImageOptions{Release: "7.2.0-fake", Payload: elf})
		os.MkdirAll(filepath.Join(obj, "arch/x86/boot"), 0o755)
		for name, data := range map[string][]byte{
			"vmlinux": elf, "vmlinux.unstripped": elf, "arch/x86/boot/bzImage": bz, "System.map": []byte("ffffffff81000000 T _text\n"),
		} {
			if err := os.WriteFile(filepath.Join(obj, name), data, 0o644); err != nil {
				return err
			}
		}
		return nil
	default:
		return fmt.Errorf("fakeMake: unexpected make %s", t)
	}
}

func (f *fakeMake) olddefconfig(src, cfgPath string) error {
	k, err := kconfig.ReadRules(src)
	if err != nil {
		return err
	}
	c, err := kernel.ReadConfig(cfgPath)
	if err != nil {
		return err
	}
	v := strings.TrimPrefix(f.pahole, "v")
	c["CONFIG_PAHOLE_VERSION"] = strings.Replace(v, ".", "", 1)
	for changed := true; changed; {
		changed = false
		for name, val := range c {
			if val == "n" || !k.DependsMet(strings.TrimPrefix(name, "CONFIG_"), c) {
				delete(c, name)
				changed = true
			}
		}
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(&b, "%s=%s\n", name, c[name])
	}
	return os.WriteFile(cfgPath, []byte(b.String()), 0o644)
}

// fakeBuild sets up a copy of the synthetic tree, a fake pahole and options
// for Build with fakeMake.
type fakeBuild struct {
	t    *testing.T
	tree string
	make *fakeMake
	opts Options
	log  *bytes.Buffer
}

// requiredFragment asks for what collect checks every kernel has.
const requiredFragment = `CONFIG_BPF_SYSCALL=y
CONFIG_BPF_JIT=y
CONFIG_DEBUG_INFO_BTF=y
CONFIG_CGROUPS=y
CONFIG_SCHED_CLASS_EXT=y
CONFIG_EXT_SUB_SCHED=y
CONFIG_BAZ=y
`

func newFakeBuild(t *testing.T) *fakeBuild {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	kerneltest.WriteTree(t, tree)
	pahole := filepath.Join(dir, "pahole")
	if err := os.WriteFile(pahole, []byte("#!/bin/sh\necho v1.30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := lookPath
	lookPath = func(name string) (string, error) {
		if strings.Contains(name, "/") {
			return name, nil
		}
		return "/usr/bin/" + name, nil
	}
	t.Cleanup(func() { lookPath = old })
	fb := &fakeBuild{t: t, tree: tree, make: &fakeMake{pahole: "v1.30"}, log: &bytes.Buffer{}}
	fb.opts = Options{
		CacheDir:  filepath.Join(dir, "cache"),
		Tree:      tree,
		Fragments: []kconfig.Fragment{{Name: "required.config", Data: []byte(requiredFragment)}},
		Pahole:    pahole,
		Jobs:      2,
		Runner:    fb.make,
		Log:       func(format string, args ...any) { fmt.Fprintf(fb.log, format+"\n", args...) },
	}
	return fb
}

func (fb *fakeBuild) build() (*Result, error) {
	fb.t.Helper()
	return Build(context.Background(), fb.opts)
}

func (fb *fakeBuild) mustBuild(wantCached bool) *Result {
	fb.t.Helper()
	res, err := fb.build()
	if err != nil {
		fb.t.Fatalf("Build: %v\nlog:\n%s", err, fb.log)
	}
	if res.Cached != wantCached {
		fb.t.Fatalf("Build: cached = %v, want %v\nlog:\n%s", res.Cached, wantCached, fb.log)
	}
	return res
}

func TestFakeMakeBuildCachesAndRebuildsOnEveryInput(t *testing.T) {
	fb := newFakeBuild(t)
	first := fb.mustBuild(false)
	if fb.make.builds != 1 {
		t.Fatalf("%d builds", fb.make.builds)
	}
	if filepath.Base(first.Image.Boot) != "vmlinux" || first.Image.BzImage == "" || first.Image.Config == "" {
		t.Errorf("image %+v: want the vmlinux to boot, with its bzImage and config beside it", first.Image)
	}
	for _, f := range []string{"vmlinux", "bzImage", "config", "System.map", "build.log", manifestName} {
		if _, err := os.Stat(filepath.Join(first.Entry, f)); err != nil {
			t.Errorf("cache entry lacks %s", f)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(first.Entry, "build.log")); !bytes.Contains(log, []byte("CC      kernel/fork.o")) {
		t.Errorf("build.log does not hold make's output:\n%s", log)
	}
	if !strings.Contains(fb.log.String(), "build: ") {
		t.Errorf("no progress lines in:\n%s", fb.log)
	}

	// Unchanged: from the cache, no make at all.
	targets := len(fb.make.targets)
	if again := fb.mustBuild(true); again.Image.Boot != first.Image.Boot {
		t.Errorf("cached image %s, want %s", again.Image.Boot, first.Image.Boot)
	}
	if len(fb.make.targets) != targets {
		t.Errorf("a cache hit ran make %q", fb.make.targets[targets:])
	}

	// Touching a file does not change the content: still cached.
	fork := filepath.Join(fb.tree, "kernel/fork.c")
	later := time.Now().Add(time.Minute)
	os.Chtimes(fork, later, later)
	fb.mustBuild(true)

	// Each changed input is a new build.
	os.WriteFile(fork, []byte("int fork(void) { return 1; }\n"), 0o644)
	fb.mustBuild(false)
	fb.mustBuild(true)

	fb.opts.Fragments = append(fb.opts.Fragments, kconfig.Fragment{Name: "extra.config", Data: []byte("CONFIG_QUX=y\n")})
	fb.mustBuild(false)

	fb.opts.Base = "defconfig"
	fb.mustBuild(false)

	relinks := fb.make.relinks
	fb.make.pahole = "v1.31"
	fb.mustBuild(false)
	if fb.make.relinks != relinks+1 {
		t.Error("a new pahole did not force the vmlinux link")
	}

	fb.opts.Force = true
	builds := fb.make.builds
	fb.mustBuild(false)
	if fb.make.builds != builds+1 {
		t.Error("--force did not build")
	}
}

func TestFakeMakeDroppedSymbolNamesItsDependency(t *testing.T) {
	fb := newFakeBuild(t)
	fb.opts.Fragments = append(fb.opts.Fragments, kconfig.Fragment{Name: "foo.config", Data: []byte("# FOO needs BAR\nCONFIG_FOO=y\n")})
	_, err := fb.build()
	if !errors.Is(err, kernel.ErrConfig) {
		t.Fatalf("err = %v, want one wrapping kernel.ErrConfig", err)
	}
	var de *kconfig.DroppedError
	if !errors.As(err, &de) || len(de.Dropped) != 1 {
		t.Fatalf("err = %#v, want a DroppedError with one symbol", err)
	}
	d := de.Dropped[0]
	if d.Request.Sym != "FOO" || d.Request.Where != "foo.config:2" || !slices.Equal(d.Unmet, []string{"BAR"}) {
		t.Errorf("dropped %+v, want FOO from foo.config:2, unmet BAR", d)
	}
	for _, want := range []string{"CONFIG_FOO=y", "depends on BAR", "did not survive olddefconfig"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if fb.make.builds != 0 {
		t.Error("built a kernel without a requested symbol")
	}
}

func TestFakeMakeRejectsWhatIsNotACleanTree(t *testing.T) {
	fb := newFakeBuild(t)
	fb.opts.Tree = t.TempDir()
	if _, err := fb.build(); !errors.Is(err, ErrNotTree) || !strings.Contains(err.Error(), "is not a kernel source tree") {
		t.Errorf("empty directory: err = %v", err)
	}
	fb.opts.Tree = filepath.Join(fb.tree, "Makefile")
	if _, err := fb.build(); !errors.Is(err, ErrNotTree) {
		t.Errorf("a file: err = %v", err)
	}
	fb.opts.Tree = fb.tree
	os.WriteFile(filepath.Join(fb.tree, ".config"), []byte("CONFIG_X=y\n"), 0o644)
	if _, err := fb.build(); !errors.Is(err, ErrNotTree) || !strings.Contains(err.Error(), "mrproper") {
		t.Errorf("configured in place: err = %v", err)
	}
}

func TestFakeMakeCompileErrorIsReported(t *testing.T) {
	fb := newFakeBuild(t)
	os.WriteFile(filepath.Join(fb.tree, "BROKEN"), nil, 0o644)
	_, err := fb.build()
	if !errors.Is(err, ErrBuild) {
		t.Fatalf("err = %v, want ErrBuild", err)
	}
	for _, want := range []string{"error: this tree is broken", "full log: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	log := FailedLog(err)
	if data, rerr := os.ReadFile(log); rerr != nil || !bytes.Contains(data, []byte("this tree is broken")) {
		t.Errorf("FailedLog(err) = %q (%v): want the build log holding make's error", log, rerr)
	}
	if FailedLog(ErrBuild) != "" {
		t.Error("FailedLog names a log for an error that is not a build's")
	}
}

func TestFakeMakeMissingToolchainNamesPackages(t *testing.T) {
	fb := newFakeBuild(t)
	lookPath = func(name string) (string, error) {
		if name == "flex" || name == "bison" {
			return "", exec.ErrNotFound
		}
		return "/usr/bin/" + name, nil
	}
	fb.make.noGelf = true
	_, err := fb.build()
	if !errors.Is(err, ErrToolchain) {
		t.Fatalf("err = %v, want ErrToolchain", err)
	}
	if !strings.Contains(err.Error(), "apt-get install flex bison libelf-dev") {
		t.Errorf("error %q does not say what to install", err)
	}
}

func TestFakeMakeOldPaholeIsRefused(t *testing.T) {
	fb := newFakeBuild(t)
	fb.make.pahole = "v1.24"
	if _, err := fb.build(); !errors.Is(err, ErrToolchain) || !strings.Contains(err.Error(), "v1.26") {
		t.Errorf("err = %v, want ErrToolchain naming v1.26", err)
	}
}

func TestFakeMakePatchesACopyNeverTheTree(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch command")
	}
	fb := newFakeBuild(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "0001-fork.patch")
	os.WriteFile(p, []byte(forkPatch), 0o644)
	fb.opts.Patches = []string{dir}
	res := fb.mustBuild(false)
	orig, _ := os.ReadFile(filepath.Join(fb.tree, "kernel/fork.c"))
	if string(orig) != "int fork(void) { return 0; }\n" {
		t.Fatalf("the tree itself was changed: %q", orig)
	}
	work := filepath.Join(fb.opts.CacheDir, "build", "work")
	copies, _ := filepath.Glob(filepath.Join(work, "*", "src", "kernel", "fork.c"))
	if len(copies) != 1 {
		t.Fatalf("patched copies %q", copies)
	}
	patched, _ := os.ReadFile(copies[0])
	if !strings.Contains(string(patched), "return 42") {
		t.Errorf("the copy is not patched: %q", patched)
	}
	fi1, _ := os.Stat(copies[0])

	// The same patches again: cached. Forced: the patched file keeps its
	// time, so make would not recompile it.
	fb.mustBuild(true)
	fb.opts.Force = true
	fb.mustBuild(false)
	fi2, _ := os.Stat(copies[0])
	if !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("re-applying the same patch moved fork.c's time from %v to %v", fi1.ModTime(), fi2.ModTime())
	}
	fb.opts.Force = false

	// Without the patch: the copy gets the tree's fork.c back, newer than
	// the patched one, so that make recompiles it.
	fb.opts.Patches = nil
	fb.mustBuild(false)
	back, _ := os.ReadFile(copies[0])
	fi3, _ := os.Stat(copies[0])
	if string(back) != string(orig) || !fi3.ModTime().After(fi2.ModTime()) {
		t.Errorf("unpatched build: fork.c %q at %v, want the original, newer than %v", back, fi3.ModTime(), fi2.ModTime())
	}
	fb.opts.Patches = []string{dir}

	// Another patch: another kernel; one that does not apply: ErrPatch.
	os.WriteFile(p, []byte(strings.Replace(forkPatch, "return 42", "return 43", 1)), 0o644)
	if again := fb.mustBuild(false); again.Key == res.Key {
		t.Error("a changed patch kept the key")
	}
	os.WriteFile(p, []byte(strings.Replace(forkPatch, "return 0", "return 7", 1)), 0o644)
	if _, err := fb.build(); !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "0001-fork.patch does not apply") {
		t.Errorf("err = %v, want ErrPatch naming the patch", err)
	}
}

const forkPatch = `From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001
From: Test <test@example.com>
Subject: [PATCH] fork: return 42

---
 kernel/fork.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/kernel/fork.c b/kernel/fork.c
--- a/kernel/fork.c
+++ b/kernel/fork.c
@@ -1 +1 @@
-int fork(void) { return 0; }
+int fork(void) { return 42; }
`

func TestFakeMakeTreeChangedBeforeTheCopyIsNotBuilt(t *testing.T) {
	fb := newFakeBuild(t)
	// Hold the tree's build directory, as another build would: Build takes
	// its key, then waits; the tree changes meanwhile.
	work := filepath.Join(fb.opts.CacheDir, "build", "work", fsutil.HashString(fb.tree)[:16])
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := cache.Lock(context.Background(), work, nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	fb.opts.Log = func(format string, args ...any) {
		if strings.HasPrefix(format, "waiting for another scxcheck") {
			waiting <- struct{}{}
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := fb.build()
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("Build did not wait for the held build directory: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Build neither waited nor returned in 20 s")
	}
	os.WriteFile(filepath.Join(fb.tree, "kernel/fork.c"), []byte("int fork(void) { return 2; }\n"), 0o644)
	unlock()

	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Build did not return in 20 s after the lock was released")
	}
	if !errors.Is(err, ErrNotTree) || !strings.Contains(err.Error(), "changed while scxcheck was copying it") {
		t.Fatalf("err = %v, want ErrNotTree saying the tree changed", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(fb.opts.CacheDir, "build", "kernels")); len(ents) != 0 {
		t.Errorf("a cache entry was written: %v", ents)
	}
	fb.opts.Log = func(string, ...any) {}
	fb.mustBuild(false) // the tree is still now: built, under its new key
}

// testPatchFS holds stand-ins for scxcheck's test-only patch, one per
// series, for the synthetic tree (7.2) and a 7.3 copy of it.
func testPatchFS(ret72, ret73 string) fstest.MapFS {
	return fstest.MapFS{
		"7.2/0001-fork.patch": {Data: []byte(strings.ReplaceAll(forkPatch, "return 42", "return "+ret72))},
		"7.3/0001-fork.patch": {Data: []byte(strings.ReplaceAll(forkPatch, "return 42", "return "+ret73))},
	}
}

// patchedFork returns the fork.c the last build of tree compiled.
func (fb *fakeBuild) patchedFork(tree string) string {
	fb.t.Helper()
	data, err := os.ReadFile(filepath.Join(fb.opts.CacheDir, "build", "work", fsutil.HashString(tree)[:16], "src", "kernel", "fork.c"))
	if err != nil {
		fb.t.Fatal(err)
	}
	return string(data)
}

func TestFakeMakeTestPatchIsAppliedForTheTreesSeries(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch command")
	}
	fb := newFakeBuild(t)
	fb.opts.TestPatch, fb.opts.TestPatches = true, testPatchFS("72", "73")
	res := fb.mustBuild(false)
	if !res.TestPatch || !strings.Contains(fb.patchedFork(fb.tree), "return 72") {
		t.Errorf("test patch %v, fork.c %q: want the 7.2 test patch applied", res.TestPatch, fb.patchedFork(fb.tree))
	}
	if !strings.Contains(fb.log.String(), "applying scxcheck's test-only patch for 7.2: 7.2/0001-fork.patch") {
		t.Errorf("the progress does not say the test patch is applied:\n%s", fb.log)
	}
	fb.log.Reset()
	if again := fb.mustBuild(true); !again.TestPatch || !strings.Contains(fb.log.String(), "with scxcheck's test-only patch 7.2/0001-fork.patch") {
		t.Errorf("cache hit: test patch %v, log:\n%s", again.TestPatch, fb.log)
	}

	// Without it: another kernel.
	fb.opts.TestPatch = false
	if plain := fb.mustBuild(false); plain.TestPatch || plain.Key == res.Key || !strings.Contains(fb.patchedFork(fb.tree), "return 0") {
		t.Errorf("without the test patch: test patch %v, same key %v", plain.TestPatch, plain.Key == res.Key)
	}

	// The same patch given by the user: recognized, and applied once.
	dir := writeTree(t, map[string]string{"0001-mine.patch": strings.ReplaceAll(forkPatch, "return 42", "return 72")})
	fb.opts.Patches = []string{dir}
	if mine := fb.mustBuild(true); !mine.TestPatch || mine.Key != res.Key {
		t.Errorf("the test patch as --patch: test patch %v, same key %v", mine.TestPatch, mine.Key == res.Key)
	}
	fb.opts.TestPatch = true
	fb.log.Reset()
	if both := fb.mustBuild(true); !both.TestPatch || both.Key != res.Key || !strings.Contains(fb.log.String(), "applied once") {
		t.Errorf("the test patch by default and as --patch: test patch %v, same key %v, log:\n%s", both.TestPatch, both.Key == res.Key, fb.log)
	}
	fb.opts.Patches = nil

	// A test patch that does not apply says how to build without it.
	fb.opts.TestPatches = fstest.MapFS{"7.2/0001-fork.patch": {Data: []byte(strings.Replace(forkPatch, "return 0", "return 7", 1))}}
	_, err := fb.build()
	if !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "scxcheck's test-only patch 7.2/0001-fork.patch does not apply") ||
		!strings.Contains(err.Error(), "--no-test-patch") {
		t.Errorf("a test patch that does not apply: err = %v", err)
	}

	// A series without a test patch: an error naming the ones there are.
	fb.opts.TestPatches = fstest.MapFS{"7.3/0001-fork.patch": {Data: []byte(forkPatch)}}
	_, err = fb.build()
	if !errors.Is(err, ErrPatch) || !strings.Contains(err.Error(), "exists for kernel series 7.3, not for this tree's 7.2") {
		t.Errorf("no test patch for 7.2: err = %v", err)
	}
	fb.opts.TestPatch = false
	fb.mustBuild(true) // and --no-test-patch builds without it
}

// writeDebianTree unpacks the synthetic tree as Debian's linux-source of
// version would be in the cache.
func (fb *fakeBuild) writeDebianTree(series, version, pkgVersion string) string {
	fb.t.Helper()
	dir := filepath.Join(fb.opts.CacheDir, "build", "trees", "linux-source-"+series+"_"+pkgVersion)
	kerneltest.WriteTree(fb.t, dir)
	v := strings.Split(version, ".")
	mk := fmt.Sprintf("VERSION = %s\nPATCHLEVEL = %s\nSUBLEVEL = %s\nEXTRAVERSION =\n", v[0], v[1], v[2])
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk), 0o644); err != nil {
		fb.t.Fatal(err)
	}
	return dir
}

func TestFakeMakeSeriesChoosesDebianSources(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch command")
	}
	fb := newFakeBuild(t)
	tree72 := fb.writeDebianTree("7.2", "7.2.13", "7.2.13-1")
	tree73 := fb.writeDebianTree("7.3", "7.3.4", "7.3.4-1~bpo13+1")
	fb.opts.Tree, fb.opts.TestPatch, fb.opts.TestPatches = "", true, testPatchFS("72", "73")

	// No default kernel yet: DefaultSeries.
	res := fb.mustBuild(false)
	if res.Tree.Dir != tree72 || res.Tree.Origin != "Debian linux-source-7.2 7.2.13-1" || !strings.Contains(fb.patchedFork(tree72), "return 72") {
		t.Errorf("default: tree %+v, fork.c %q", res.Tree, fb.patchedFork(tree72))
	}

	fb.opts.Series = "7.3"
	res = fb.mustBuild(false)
	if res.Tree.Dir != tree73 || res.Tree.Version != "7.3.4" || !res.TestPatch || !strings.Contains(fb.patchedFork(tree73), "return 73") {
		t.Errorf("--series 7.3: tree %+v, fork.c %q", res.Tree, fb.patchedFork(tree73))
	}
	if !strings.Contains(fb.log.String(), "applying scxcheck's test-only patch for 7.3: 7.3/0001-fork.patch") {
		t.Errorf("the progress does not name the 7.3 test patch:\n%s", fb.log)
	}

	// The default kernel's series, when one is remembered.
	fb.opts.Series = ""
	os.MkdirAll(filepath.Join(fb.opts.CacheDir, "kernels"), 0o755)
	os.WriteFile(filepath.Join(fb.opts.CacheDir, "kernels", "DEFAULT"), []byte("7.3.4+deb13-cloud-amd64\n"), 0o644)
	if res := fb.mustBuild(true); res.Tree.Dir != tree73 {
		t.Errorf("default kernel 7.3: tree %s", res.Tree.Dir)
	}

	for _, bad := range []string{"7", "7.3.4", "seven"} {
		fb.opts.Series = bad
		if _, err := fb.build(); !errors.Is(err, ErrNotTree) || !strings.Contains(err.Error(), "is not a kernel series: want major.minor") {
			t.Errorf("series %q: err = %v", bad, err)
		}
	}
	fb.opts.Series, fb.opts.Tree = "7.3", tree73
	if _, err := fb.build(); !errors.Is(err, ErrNotTree) || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("series and tree: err = %v", err)
	}
}

// A coverage kernel is an entry of its own, built from the same build
// directory with build_policy.o profiled on make's command line, and keeps
// the notes, the compiled sources and the patches; a plain kernel has no
// gcov data.
func TestFakeMakeCoverageKernel(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("no patch command")
	}
	fb := newFakeBuild(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "0001-fork.patch"), []byte(forkPatch), 0o644)
	fb.opts.Patches = []string{dir}
	plain := fb.mustBuild(false)
	if fb.make.profiled != 0 || plain.Coverage != nil {
		t.Fatalf("a plain build profiled (%d) or has coverage %+v", fb.make.profiled, plain.Coverage)
	}
	if _, err := OpenCoverage(plain.Image.Boot); !errors.Is(err, ErrNoCoverage) || !strings.Contains(err.Error(), "kernel build --coverage") {
		t.Errorf("OpenCoverage of a plain kernel: %v", err)
	}

	fb.opts.Coverage = true
	cov := fb.mustBuild(false)
	if works, _ := filepath.Glob(filepath.Join(fb.opts.CacheDir, "build", "work", "*-coverage", "obj")); len(works) != 1 {
		t.Errorf("coverage build directories %q, want one of its own", works)
	}
	if cov.Key == plain.Key || cov.Entry == plain.Entry || fb.make.profiled != 1 {
		t.Fatalf("coverage kernel: key %s (plain %s), %d profiled builds", cov.Key, plain.Key, fb.make.profiled)
	}
	c := cov.Coverage
	if c == nil || c.GCOV != "gcov-12" || c.Compiler != "12.2.0" || !strings.HasSuffix(c.ObjDir, "/obj") || !strings.HasSuffix(c.SrcDir, "/src") {
		t.Fatalf("coverage %+v", c)
	}
	if c.GuestDir() != "/sys/kernel/debug/gcov"+c.ObjDir {
		t.Errorf("guest dir %s", c.GuestDir())
	}
	for _, f := range []string{
		filepath.Join(c.Notes, "kernel/sched/build_policy.gcno"),
		filepath.Join(c.Sources, "kernel/fork.c"), // the compiled source, patched
		filepath.Join(c.Sources, "Makefile"),      // a dependency
	} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("the entry lacks %s", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(c.Sources, "kernel/fork.c")); !strings.Contains(string(b), "return 42") {
		t.Errorf("kept source is not the patched one: %q", b)
	}
	if _, err := os.Stat(filepath.Join(c.Sources, "include/generated/autoconf.h")); err == nil {
		t.Error("a generated file of the build directory was kept as a source")
	}
	if len(c.Patches) != 1 || c.Patches[0].Name == "" || c.Patches[0].Test {
		t.Fatalf("patches %+v", c.Patches)
	}
	if b, _ := os.ReadFile(c.Patches[0].File); string(b) != forkPatch {
		t.Errorf("kept patch %q", b)
	}
	cfg, _ := kernel.ReadConfig(cov.Image.Config)
	if cfg["CONFIG_GCOV_KERNEL"] != "y" || cfg["CONFIG_DEBUG_FS"] != "y" {
		t.Errorf("config lacks gcov: %v", cfg)
	}

	// Again: from the cache, with its coverage; the plain one too.
	again := fb.mustBuild(true)
	if again.Coverage == nil || again.Coverage.Notes != c.Notes {
		t.Errorf("cached coverage kernel: %+v", again.Coverage)
	}
	if got, err := OpenCoverage(cov.Image.Boot); err != nil || got.ObjDir != c.ObjDir {
		t.Errorf("OpenCoverage = %+v, %v", got, err)
	}
	fb.opts.Coverage = false
	if p := fb.mustBuild(true); p.Coverage != nil {
		t.Error("the plain kernel from the cache has coverage")
	}

	// An entry whose notes were damaged is no coverage kernel.
	os.WriteFile(filepath.Join(c.Notes, "kernel/sched/build_policy.gcno"), []byte("x"), 0o644)
	if _, err := OpenCoverage(cov.Image.Boot); !errors.Is(err, ErrNoCoverage) {
		t.Errorf("OpenCoverage of a damaged entry: %v", err)
	}
}
