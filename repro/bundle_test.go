package repro

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/scxcheck/scxcheck/kernel/debian"
)

// testKernel is the kernel the QEMU tests boot: $SCXCHECK_KERNEL, else the
// cached default kernel; the test skips without one.
func testKernel(t *testing.T) string {
	if k := os.Getenv("SCXCHECK_KERNEL"); k != "" {
		return k
	}
	dir, err := debian.DefaultCacheDir()
	if err == nil {
		if img, err := debian.Cached(dir, ""); err == nil {
			return img.Boot
		}
	}
	t.Skip("no kernel: set SCXCHECK_KERNEL or run `scxcheck kernel fetch`")
	return ""
}

// TestBundleReplaysFailure writes a bundle for a spec that fails on purpose
// (the selftest spec: an exit-kind assertion that cannot hold) against a
// real kernel, then replays it with repro.sh on a PATH that has QEMU and a
// shell's tools but no Go and no scxcheck, and expects the same failure.
// It also checks that `scxcheck run --artifacts` bundles a failing spec by
// itself. It boots QEMU three times (~30 s under TCG).
func TestBundleReplaysFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("boots QEMU")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed")
	}
	k := testKernel(t)
	dir := t.TempDir()

	// The scxcheck binary, static, as `make build` makes it.
	bin := filepath.Join(dir, "bin", "scxcheck")
	for _, b := range [][]string{
		{"-o", bin, "../cmd/scxcheck"},
		{"-ldflags=-s -w", "-o", filepath.Join(dir, "bin", "scxcheck-agent"), "../cmd/scxcheck-agent"},
	} {
		cmd := exec.Command("go", append([]string{"build", "-trimpath"}, b...)...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}

	began := time.Now()
	out := filepath.Join(dir, "bundles")
	stdout, stderr, code := run(t, exec.Command(bin, "repro", "--out", out, "--label-filter", "selftest", "--kernel", k, "--accel", "tcg"))
	if code != 0 {
		t.Fatalf("scxcheck repro exited %d\n%s\n%s", code, stdout, stderr)
	}
	scripts, _ := filepath.Glob(filepath.Join(out, "*", ScriptName))
	if len(scripts) != 1 {
		t.Fatalf("want one bundle, got %v\n%s", scripts, stdout)
	}
	bundle := filepath.Dir(scripts[0])
	for _, f := range []string{"vmlinux", InitramfsName, ExpectedJSON, ExpectedText, CmdlineName, "logs/exits.json", "logs/kmsg.txt"} {
		if _, err := os.Stat(filepath.Join(bundle, f)); err != nil {
			t.Errorf("bundle lacks %s", f)
		}
	}
	// The recorded exit info: the selftest root was still running.
	var exits []harness.SchedExit
	if b, err := os.ReadFile(filepath.Join(bundle, "logs", "exits.json")); err != nil || json.Unmarshal(b, &exits) != nil ||
		len(exits) != 1 || exits[0].Name != "selftest" || exits[0].Exit == nil || exits[0].Exit.KindName != "SCX_EXIT_NONE" {
		t.Errorf("exits.json: %+v (%v)", exits, err)
	}
	t.Logf("bundle written in %s", time.Since(began).Round(time.Millisecond))

	// Only QEMU and a shell's tools on PATH: no go, no scxcheck.
	tools := filepath.Join(dir, "tools")
	os.Mkdir(tools, 0o755)
	os.Symlink(qemu, filepath.Join(tools, "qemu-system-x86_64"))
	for _, tool := range []string{"sh", "dirname", "rm", "mkdir", "timeout", "cat", "sed", "head", "tail", "grep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		os.Symlink(p, filepath.Join(tools, tool))
	}
	began = time.Now()
	replay := exec.Command(filepath.Join(bundle, ScriptName))
	replay.Env = []string{"PATH=" + tools, "TIMEOUT=300"}
	stdout, stderr, code = run(t, replay)
	t.Logf("replayed in %s", time.Since(began).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("repro.sh exited %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"REPRODUCED: failed at github.com/scxcheck/scxcheck/harness/selftests/selftest.go:",
		"failure: expected an exit SCX_EXIT_ERROR, got no exit (the scheduler is still running, kind SCX_EXIT_NONE)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("repro.sh output lacks %q:\n%s", want, stdout)
		}
	}

	// `scxcheck run --artifacts` bundles a failing spec by itself.
	arts := filepath.Join(dir, "artifacts")
	_, stderr, code = run(t, exec.Command(bin, "run", "--artifacts", arts, "--label-filter", "selftest", "--kernel", k, "--accel", "tcg"))
	if code != 1 {
		t.Fatalf("scxcheck run exited %d, want 1 (the selftest spec fails)\n%s", code, stderr)
	}
	auto, _ := filepath.Glob(filepath.Join(arts, "*", "repro", ScriptName))
	if len(auto) != 1 || !strings.Contains(stderr, "reproduction bundle: ") {
		t.Errorf("run --artifacts wrote bundles %v\n%s", auto, stderr)
	}
}

func run(t *testing.T, cmd *exec.Cmd) (stdout, stderr string, code int) {
	t.Helper()
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return o.String(), e.String(), code
}
