package repro

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/outcome"
)

var recordedQEMU = []string{"/usr/bin/qemu-system-x86_64", "-nodefaults", "-no-reboot", "-m", "1024", "-smp", "2",
	"-chardev", "stdio,id=con,signal=off", "-serial", "chardev:con", "-device", "virtio-serial-pci",
	"-chardev", "socket,id=ctl,path=/tmp/scxcheck-vm-1/ctl.sock", "-device", "virtserialport,chardev=ctl,name=scxcheck.ctl",
	"-chardev", "socket,id=ev,path=/tmp/scxcheck-vm-1/events.sock", "-device", "virtserialport,chardev=ev,name=scxcheck.events",
	"-kernel", "/cache/vmlinux", "-initrd", "/tmp/scxcheck-suite-1/initramfs.cpio",
	"-append", "console=ttyS0 panic=-1", "-accel", "tcg,thread=single"}

func TestReplayArgs(t *testing.T) {
	got, err := replayArgs(recordedQEMU, "vmlinux", "SPEC")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-nodefaults", "-no-reboot", "-m", "1024", "-smp", "2",
		"-chardev", "stdio,id=con,logfile=${OUT}/console.log", "-serial", "chardev:con", "-device", "virtio-serial-pci",
		"-chardev", "null,id=ctl", "-device", "virtserialport,chardev=ctl,name=scxcheck.ctl",
		"-chardev", "file,id=ev,path=${OUT}/events.jsonl", "-device", "virtserialport,chardev=ev,name=scxcheck.events",
		"-kernel", "${here}/vmlinux", "-initrd", "${here}/initramfs.cpio",
		"-append", "console=ttyS0 panic=-1 scxcheck.repro=SPEC",
		"-chardev", "file,id=outcome,path=${OUT}/outcome.txt", "-device", "virtserialport,chardev=outcome,name=scxcheck.outcome"}
	if !slices.Equal(got, want) {
		t.Errorf("replay args\n%q\nwant\n%q", got, want)
	}
	if _, err := replayArgs([]string{"qemu", "-m", "1"}, "vmlinux", "x"); err == nil {
		t.Error("a command line without -kernel and -append is an error")
	}
}

func TestPayloadAndOutcome(t *testing.T) {
	p := payload{Text: `it's "quoted" $HOME`, Labels: []string{"selftest"}}
	enc := p.encode()
	if strings.ContainsAny(enc, " =\"'") {
		t.Errorf("payload %q is not one kernel command-line word", enc)
	}
	got, err := decodePayload(enc)
	if err != nil || got.Text != p.Text || !slices.Equal(got.Labels, p.Labels) {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	if _, err := decodePayload("!!"); err == nil {
		t.Error("bad payload accepted")
	}
	o := Outcome{Spec: "s", State: "failed", Class: "exit", Location: "a.go:1", Failure: "line 1\nline 2\n"}
	text := "[  1.0] noise\n" + o.Format() + "[  2.0] reboot: Power down\n"
	back, ok := ParseOutcome(text)
	if !ok || back != (Outcome{Spec: "s", State: "failed", Class: "exit", Location: "a.go:1", Failure: "line 1\nline 2"}) {
		t.Errorf("ParseOutcome: %+v %v", back, ok)
	}
	if _, ok := ParseOutcome("scxcheck-repro: state: failed\n"); ok {
		t.Error("an outcome without its end line is incomplete")
	}
}

// fakeQEMU stands in for qemu-system-x86_64 in the script tests: it finds
// the console log and outcome file in its arguments and writes $FAKE_CONSOLE
// and $FAKE_OUTCOME there.
const fakeQEMU = `#!/bin/sh
for a in "$@"; do
	case $a in
	stdio,*logfile=*) console=${a##*logfile=} ;;
	file,id=outcome,path=*) outcome=${a##*path=} ;;
	esac
done
printf '%s' "$FAKE_CONSOLE" > "$console"
[ -z "$FAKE_OUTCOME" ] || printf '%s' "$FAKE_OUTCOME" > "$outcome"
exit 0
`

func TestReproScript(t *testing.T) {
	exitRec := harness.SpecRecord{Text: "a spec", State: "failed", Class: outcome.Exit,
		Location: "github.com/scxcheck/scxcheck/suites/x.go:37", Failure: "expected an exit SCX_EXIT_ERROR", QEMU: recordedQEMU}
	panicRec := harness.SpecRecord{Text: "a panic", State: "failed", Class: outcome.Crash,
		Location: "github.com/scxcheck/scxcheck/suites/verdict.go:120",
		Failure:  "kernel kernel panic during the spec: Kernel panic - not syncing: Fatal exception\n...", QEMU: recordedQEMU}
	failed := Outcome{Spec: "a spec", State: "failed", Class: "exit", Location: "/abs/path/suites/x.go:37", Failure: "expected an exit SCX_EXIT_ERROR"}
	passed := Outcome{Spec: "a spec", State: "passed"}
	for _, c := range []struct {
		name             string
		rec              harness.SpecRecord
		console, outcome string
		want             int
		say              string
	}{
		{"same failure", exitRec, "boot\n", failed.Format(), 0, "REPRODUCED: failed at /abs/path/suites/x.go:37"},
		{"passes now", exitRec, "boot\n", passed.Format(), 1, "NOT REPRODUCED: the replay's outcome is passed"},
		{"no outcome", exitRec, "boot\nno init found\n", "", 3, "NOT REPLAYED"},
		{"panic on the console", panicRec, "x\n[ 9.1] Kernel panic - not syncing: Fatal exception\n", "", 0, "REPRODUCED: the kernel faulted as recorded"},
		{"no panic this time", panicRec, "x\n", "", 3, "NOT REPLAYED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			args, err := replayArgs(c.rec.QEMU, "vmlinux", payload{Text: c.rec.Text}.encode())
			if err != nil {
				t.Fatal(err)
			}
			script, err := renderScript(c.rec, args)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, ScriptName), []byte(script), 0o755)
			os.WriteFile(filepath.Join(dir, ExpectedText), []byte(expectedText(c.rec)), 0o644)
			os.WriteFile(filepath.Join(dir, "qemu"), []byte(fakeQEMU), 0o755)
			if out, err := exec.Command("sh", "-n", filepath.Join(dir, ScriptName)).CombinedOutput(); err != nil {
				t.Fatalf("sh -n: %v\n%s", err, out)
			}
			cmd := exec.Command(filepath.Join(dir, ScriptName))
			cmd.Env = append(os.Environ(), "QEMU="+filepath.Join(dir, "qemu"), "FAKE_CONSOLE="+c.console, "FAKE_OUTCOME="+c.outcome)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != c.want || !strings.Contains(string(out), c.say) {
				t.Errorf("repro.sh exited %d, want %d saying %q:\n%s", code, c.want, c.say, out)
			}
		})
	}
	// Without QEMU it says what to install.
	dir := t.TempDir()
	args, _ := replayArgs(recordedQEMU, "vmlinux", "x")
	script, _ := renderScript(exitRec, args)
	os.WriteFile(filepath.Join(dir, ScriptName), []byte(script), 0o755)
	cmd := exec.Command(filepath.Join(dir, ScriptName))
	cmd.Env = append(os.Environ(), "QEMU=qemu-system-nonexistent")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "install QEMU") {
		t.Errorf("without QEMU: %v\n%s", err, out)
	}
}

// Outside the module's directory (as in the CLI's script tests), Binary
// still builds scxcheck from this test binary's module.
func TestBinaryBuildsFromAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds scxcheck")
	}
	dir := t.TempDir()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(dir)
	bin, err := Binary(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(bin) != dir {
		t.Errorf("built %s, want it in %s", bin, dir)
	}
}
