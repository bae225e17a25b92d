package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runSelf runs this test binary as the scxcheck command (see TestMain) and
// returns its output and exit code. Its stderr also goes to the test log.
func runSelf(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), self, args...)
	cmd.Env = append(os.Environ(), "SCXCHECK_TEST_MAIN=1")
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	t.Logf("scxcheck %s", strings.Join(args, " "))
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("exit %d\n%s", code, errb.String())
	return out.String(), errb.String(), code
}

// TestSlowKernelBuild builds scxcheck's own config from Debian's
// linux-source (the default tree, in the default cache, so a second run is
// a cache hit) with scxcheck's test-only patch (the default), checks that an
// unchanged build comes from the cache in seconds, boots the kernel through
// the boot, dispatch and recursion suites, checks that --no-test-patch is
// another kernel and that the same patch given with --patch is applied once,
// and checks that a fragment turning off a dependency of sched_ext fails
// naming both on the real Kconfig. Tens of minutes on two cores: only with
// SCXCHECK_SLOW=1 (make test-slow).
func TestSlowKernelBuild(t *testing.T) {
	if os.Getenv("SCXCHECK_SLOW") != "1" {
		t.Skip("set SCXCHECK_SLOW=1 (make test-slow): builds Debian's kernel source and boots it")
	}
	out, errOut, code := runSelf(t, "kernel", "build")
	if code != 0 {
		t.Fatalf("kernel build: exit %d", code)
	}
	img := strings.TrimSpace(out)
	if filepath.Base(img) != "vmlinux" {
		t.Fatalf("kernel build printed %q, want the path of a vmlinux", img)
	}
	if !strings.Contains(errOut, "test-only patch") {
		t.Errorf("the build does not say it has the test-only patch")
	}

	start := time.Now()
	out, errOut, code = runSelf(t, "kernel", "build")
	if code != 0 || strings.TrimSpace(out) != img || !strings.Contains(errOut, "kernel from cache") {
		t.Errorf("unchanged build: exit %d, printed %q, want %q from the cache", code, out, img)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cache hit took %s, want ≤ 5s", d)
	}

	out, _, code = runSelf(t, "run", "--kernel", img, "--label-filter", "boot || dispatch || recursion")
	if code != 0 {
		t.Errorf("run --label-filter 'boot || dispatch || recursion' on the built kernel: exit %d", code)
	}
	if strings.Contains(out, "test_self_sub_dispatch") {
		t.Errorf("specs skipped for want of the test-only parameter on the built kernel:\n%s", out)
	}

	out, _, code = runSelf(t, "kernel", "build", "--no-test-patch")
	if code != 0 {
		t.Fatalf("kernel build --no-test-patch: exit %d", code)
	}
	if plain := strings.TrimSpace(out); plain == img {
		t.Error("the kernel without the test patch is the patched one's cache entry")
	}
	patches, err := filepath.Abs("../../fixtures/kernel-patches")
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runSelf(t, "kernel", "build", "--patch", patches)
	if code != 0 || strings.TrimSpace(out) != img || !strings.Contains(errOut, "applied once") {
		t.Errorf("kernel build --patch %s: exit %d, printed %q, want %q, the test patch applied once", patches, code, out, img)
	}

	dir := t.TempDir()
	frag := filepath.Join(dir, "nojit.config")
	os.WriteFile(frag, []byte("# CONFIG_BPF_JIT is not set\n"), 0o644)
	_, errOut, code = runSelf(t, "kernel", "build", "--config", frag)
	if code != 2 {
		t.Errorf("a fragment turning BPF_JIT off: exit %d, want 2", code)
	}
	for _, want := range []string{"CONFIG_SCHED_CLASS_EXT=y", "depends on BPF_JIT, which " + frag + ":1 turns off"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}
