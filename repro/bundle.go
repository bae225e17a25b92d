package repro

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/scxcheck/scxcheck/harness"

	"github.com/scxcheck/scxcheck/agent"
	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/vm"
)

// Files of a bundle.
const (
	ScriptName    = "repro.sh"
	InitramfsName = "initramfs.cpio"
	ExpectedJSON  = "expected.json"
	ExpectedText  = "expected.txt"
	CmdlineName   = "qemu-cmdline.txt"
	LogsDir       = "logs"
)

// Binary returns a static scxcheck executable that can replay a spec as
// the VM's /init: $SCXCHECK_REPRO_BIN; the running executable when it is
// scxcheck (selfIsScxcheck: the scxcheck command says so); else a fresh
// static build of cmd/scxcheck with the go command into dir, when the
// running program's module is known.
func Binary(dir string, selfIsScxcheck bool) (string, error) {
	bin, err := vm.StaticBinary(vm.BinarySource{Env: "SCXCHECK_REPRO_BIN", Self: selfIsScxcheck, Package: "cmd/scxcheck", Dir: dir})
	if err != nil {
		return "", fmt.Errorf("reproduction bundle: %w", err)
	}
	return bin, nil
}

// Writer writes the bundles of one run: the kernel and the initramfs are
// written once and hard-linked into later bundles when the file system
// allows, so each bundle stays a self-contained directory.
type Writer struct {
	// Kernel is the image the run booted.
	Kernel *kernel.Image
	// Binary is the /init of the initramfs (the scxcheck command gives its
	// own executable); "" means Binary(dir, false).
	Binary string

	mu        sync.Mutex
	initramfs string // the first bundle's, to link from
	kernel    string // likewise
	tmp       string
}

// Close removes the writer's temporary files.
func (w *Writer) Close() error {
	if w.tmp != "" {
		return os.RemoveAll(w.tmp)
	}
	return nil
}

// Write writes a bundle for the spec rec records into dir.
func (w *Writer) Write(dir string, rec harness.SpecRecord) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(rec.QEMU) == 0 {
		return fmt.Errorf("bundle for %q: the spec ran in no VM (no QEMU command line recorded)", rec.Text)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	kname := "vmlinux"
	if w.Kernel.Vmlinux == "" || w.Kernel.Boot != w.Kernel.Vmlinux {
		kname = "bzImage"
	}
	if err := w.shared(&w.kernel, w.Kernel.Boot, filepath.Join(dir, kname)); err != nil {
		return err
	}
	if w.Kernel.Config != "" {
		if err := fsutil.CopyFile(w.Kernel.Config, filepath.Join(dir, "config")); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	if err := w.writeInitramfs(filepath.Join(dir, InitramfsName)); err != nil {
		return err
	}
	args, err := replayArgs(rec.QEMU, kname, payload{Text: rec.Text, Labels: rec.Labels}.encode())
	if err != nil {
		return fmt.Errorf("bundle for %q: %w", rec.Text, err)
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	files := map[string][]byte{
		ExpectedJSON: append(b, '\n'),
		ExpectedText: []byte(expectedText(rec)),
		CmdlineName:  []byte("# The QEMU command line of the recorded run (its sockets and temporary files are gone;\n# repro.sh runs the same machine with files in their place).\n" + shellJoin(rec.QEMU) + "\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	script, err := renderScript(rec, args)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ScriptName), []byte(script), 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if rec.Dir != "" {
		if err := copyLogs(rec.Dir, filepath.Join(dir, LogsDir)); err != nil {
			return err
		}
	}
	return nil
}

// shared writes dst as a copy of src, or as a hard link to the copy an
// earlier bundle made (*first).
func (w *Writer) shared(first *string, src, dst string) error {
	if *first == dst {
		return nil
	}
	os.Remove(dst)
	if *first != "" && os.Link(*first, dst) == nil {
		return nil
	}
	if *first != "" {
		src = *first
	}
	if err := fsutil.CopyFile(src, dst); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	*first = dst
	return nil
}

// writeInitramfs writes the initramfs, /init being the scxcheck binary:
// built for the first bundle, linked or copied for the others.
func (w *Writer) writeInitramfs(dst string) error {
	if w.initramfs != "" {
		return w.shared(&w.initramfs, w.initramfs, dst)
	}
	bin := w.Binary
	if bin == "" {
		var err error
		if w.tmp, err = os.MkdirTemp("", "scxcheck-repro-"); err != nil {
			return err
		}
		if bin, err = Binary(w.tmp, false); err != nil {
			return err
		}
		w.Binary = bin
	}
	if err := vm.WriteInitramfs(dst, bin); err != nil {
		return fmt.Errorf("bundle: write initramfs: %w", err)
	}
	w.initramfs = dst
	return nil
}

// Placeholders in replay arguments for repro.sh's variables.
const (
	hereVar = "${here}"
	outVar  = "${OUT}"
)

// replayArgs turns the recorded QEMU command line into the replay's: the
// same machine (memory, CPUs, devices, kernel command line), with the
// bundle's kernel and initramfs, the control socket replaced by nothing,
// the event socket by a file, an outcome port added, the console logged,
// and scxcheck.repro=<spec> appended to the kernel command line. The
// accelerator is left to repro.sh (ACCEL); the recorded one is returned.
func replayArgs(recorded []string, kernelName, spec string) ([]string, error) {
	var out []string
	var sawAppend, sawKernel bool
	for i := 1; i < len(recorded); i++ {
		a := recorded[i]
		next := func() (string, error) {
			if i+1 >= len(recorded) {
				return "", fmt.Errorf("recorded QEMU command line ends after %s", a)
			}
			i++
			return recorded[i], nil
		}
		switch a {
		case "-chardev":
			v, err := next()
			if err != nil {
				return nil, err
			}
			out = append(out, a, replayChardev(v))
		case "-kernel":
			if _, err := next(); err != nil {
				return nil, err
			}
			out = append(out, a, hereVar+"/"+kernelName)
			sawKernel = true
		case "-initrd":
			if _, err := next(); err != nil {
				return nil, err
			}
			out = append(out, a, hereVar+"/"+InitramfsName)
		case "-append":
			v, err := next()
			if err != nil {
				return nil, err
			}
			out = append(out, a, v+" "+agent.ReplayParam+"="+spec)
			sawAppend = true
		case "-accel":
			if _, err := next(); err != nil {
				return nil, err
			}
		case "-cpu":
			if _, err := next(); err != nil {
				return nil, err
			}
		default:
			out = append(out, a)
		}
	}
	if !sawKernel || !sawAppend {
		return nil, errors.New("recorded QEMU command line has no -kernel or -append")
	}
	out = append(out, "-chardev", "file,id=outcome,path="+outVar+"/outcome.txt",
		"-device", "virtserialport,chardev=outcome,name="+OutcomePort)
	return out, nil
}

func replayChardev(v string) string {
	backend, rest, _ := strings.Cut(v, ",")
	id := ""
	for _, kv := range strings.Split(rest, ",") {
		if s, ok := strings.CutPrefix(kv, "id="); ok {
			id = s
		}
	}
	switch backend {
	case "stdio":
		return "stdio,id=" + id + ",logfile=" + outVar + "/console.log"
	case "socket":
		if id == "ev" {
			return "file,id=ev,path=" + outVar + "/events.jsonl"
		}
		return "null,id=" + id
	}
	return v
}

// shellQuote quotes a word for sh, leaving the placeholders as variables.
func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./:=,+-]+$`).MatchString(s) {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
	q := r.Replace(s)
	q = strings.ReplaceAll(q, `\`+hereVar, hereVar)
	q = strings.ReplaceAll(q, `\`+outVar, outVar)
	return `"` + q + `"`
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if regexp.MustCompile(`^[A-Za-z0-9_./:=,+-]+$`).MatchString(a) {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// faultPatterns are grep -E patterns for the console line of each kernel
// fault kind (as vm's console watcher classifies them).
var faultPatterns = map[string]string{
	string(vm.FaultPanic):    "Kernel panic - not syncing",
	string(vm.FaultBUG):      "BUG: ",
	string(vm.FaultOops):     "Oops(: | - )",
	string(vm.FaultWarning):  "WARNING: ",
	string(vm.FaultRCUStall): "rcu: INFO: .*detected stall|self-detected stall on CPU",
	string(vm.FaultHungTask): "INFO: task .* blocked for more than",
}

var crashKind = regexp.MustCompile(`(?m)^kernel (.+?) during the spec: `)

// expectedFault returns the console pattern of the recorded kernel fault,
// "" when the spec did not fail with one.
func expectedFault(rec harness.SpecRecord) string {
	m := crashKind.FindStringSubmatch(rec.Failure)
	if m == nil {
		return ""
	}
	return faultPatterns[m[1]]
}

func expectedText(rec harness.SpecRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "spec:     %s\n", rec.Text)
	if len(rec.Labels) > 0 {
		fmt.Fprintf(&b, "labels:   %s\n", strings.Join(rec.Labels, ", "))
	}
	fmt.Fprintf(&b, "state:    %s\n", rec.State)
	if rec.Class != "" {
		fmt.Fprintf(&b, "class:    %s\n", rec.Class)
	}
	if rec.Location != "" {
		fmt.Fprintf(&b, "location: %s\n", rec.Location)
	}
	fmt.Fprintf(&b, "kernel:   %s\n", rec.Kernel)
	if rec.Failure != "" {
		fmt.Fprintf(&b, "failure:\n%s\n", indent(rec.Failure))
	}
	for _, s := range rec.Schedulers {
		if s.Exit != nil {
			fmt.Fprintf(&b, "scheduler %s (%s): %s\n", s.Name, s.Fixture, s.Exit)
		}
	}
	return b.String()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

var scriptTmpl = template.Must(template.New("repro.sh").Parse(`#!/bin/sh
# Reproduction bundle written by scxcheck on {{.Date}}.
#
# Replays, on the kernel in this directory, the spec
#   {{.Text}}
# which {{.Outcome}} when it was recorded (see expected.txt).
# Needs only qemu-system-x86_64 (plus a POSIX shell and its usual tools).
#
#   ./repro.sh            boot, replay the spec in the guest, compare
#
# Environment: QEMU (the emulator binary), ACCEL (tcg, the default, or kvm),
# TIMEOUT (seconds, default 600), OUT (output directory, default ./replay).
# Exit: 0 the recorded outcome was reproduced, 1 the replay's outcome
# differs, 3 the replay did not run (no QEMU, timeout, no outcome).
#
# The guest's /init is the scxcheck binary: booted with scxcheck.repro=<spec>
# it runs that spec's own code against the kernel it runs on and prints the
# outcome; OUT gets console.log, events.jsonl (kernel log and trace lines)
# and outcome.txt.
set -u
here=$(cd "$(dirname "$0")" && pwd)
QEMU=${QEMU:-qemu-system-x86_64}
ACCEL=${ACCEL:-tcg}
TIMEOUT=${TIMEOUT:-600}
OUT=${OUT:-$here/replay}

expected_state={{.State}}
expected_location={{.Location}}
expected_fault={{.Fault}}

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "repro.sh: $QEMU not found: install QEMU (Debian, Ubuntu: apt-get install qemu-system-x86; Fedora: dnf install qemu-system-x86)" >&2
	exit 3
fi
rm -rf "$OUT" && mkdir -p "$OUT" || exit 3

set -- {{.Args}}
case $ACCEL in
kvm) set -- "$@" -accel kvm -cpu host ;;
tcg) set -- "$@" -accel {{.TCG}} ;;
*) echo "repro.sh: ACCEL must be tcg or kvm, not $ACCEL" >&2; exit 3 ;;
esac
printf '%s\n' "$QEMU" "$@" > "$OUT/qemu-cmdline.txt"

to=
command -v timeout >/dev/null 2>&1 && to="timeout $TIMEOUT"
echo "repro.sh: booting $here/{{.Kernel}} ($ACCEL); output in $OUT" >&2
$to "$QEMU" "$@" </dev/null
qemu_status=$?

echo
echo "==== recorded ($here/expected.txt)"
cat "$here/expected.txt"
echo "==== replayed ($OUT/outcome.txt)"
got_state=$(sed -n 's/^scxcheck-repro: state: //p' "$OUT/outcome.txt" 2>/dev/null | head -n 1)
got_location=$(sed -n 's/^scxcheck-repro: location: //p' "$OUT/outcome.txt" 2>/dev/null | head -n 1)
if [ -n "$got_state" ]; then
	sed -n 's/^scxcheck-repro: //p' "$OUT/outcome.txt"
fi
echo "===="

if [ -z "$got_state" ]; then
	if [ -n "$expected_fault" ] && grep -Eq "$expected_fault" "$OUT/console.log" 2>/dev/null; then
		echo "REPRODUCED: the kernel faulted as recorded; console:"
		grep -E -m 1 -A 20 "$expected_fault" "$OUT/console.log"
		exit 0
	fi
	echo "NOT REPLAYED: the guest reported no outcome (QEMU exit status $qemu_status; 124 is the $TIMEOUT s timeout); see $OUT/console.log"
	tail -n 20 "$OUT/console.log" 2>/dev/null
	exit 3
fi
if [ "$got_state" = "$expected_state" ] && [ "${got_location##*/}" = "${expected_location##*/}" ]; then
	echo "REPRODUCED: $got_state at ${got_location:-(no failure)}, as recorded"
	exit 0
fi
echo "NOT REPRODUCED: the replay's outcome is $got_state at ${got_location:-(no failure)}; recorded: $expected_state at ${expected_location:-(no failure)}"
exit 1
`))

func renderScript(rec harness.SpecRecord, args []string) (string, error) {
	outcome := "passed"
	if rec.Failed() {
		outcome = fmt.Sprintf("%s (%s) at %s", rec.State, rec.Class, rec.Location)
	} else if rec.State != "passed" {
		outcome = "was " + rec.State
	}
	var quoted []string
	line := ""
	for _, a := range args {
		q := shellQuote(a)
		if len(line)+len(q) > 70 {
			quoted = append(quoted, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += q
	}
	quoted = append(quoted, line)
	tcg := "tcg,thread=single"
	for i, a := range rec.QEMU {
		if a == "-accel" && i+1 < len(rec.QEMU) && strings.HasPrefix(rec.QEMU[i+1], "tcg") {
			tcg = rec.QEMU[i+1]
		}
	}
	kname := "vmlinux"
	for i, a := range args {
		if a == "-kernel" && i+1 < len(args) {
			kname = filepath.Base(args[i+1])
		}
	}
	var b strings.Builder
	err := scriptTmpl.Execute(&b, map[string]string{
		"Date":     time.Now().UTC().Format(time.RFC3339),
		"Text":     rec.Text,
		"Outcome":  outcome,
		"State":    shellQuote(rec.State),
		"Location": shellQuote(rec.Location),
		"Fault":    shellQuote(expectedFault(rec)),
		"Args":     strings.Join(quoted, " \\\n\t"),
		"TCG":      shellQuote(tcg),
		"Kernel":   kname,
	})
	return b.String(), err
}

func copyLogs(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	for _, name := range []string{"console.log", "trace.txt", "kmsg.txt", "dump.txt", "exits.json", "spec.json"} {
		if err := fsutil.CopyFile(filepath.Join(src, name), filepath.Join(dst, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bundle: %w", err)
		}
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
