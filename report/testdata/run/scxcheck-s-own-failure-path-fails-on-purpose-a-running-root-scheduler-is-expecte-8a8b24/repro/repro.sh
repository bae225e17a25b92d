#!/bin/sh
# Reproduction bundle written by scxcheck on 2026-12-02T13:08:39Z.
#
# Replays, on the kernel in this directory, the spec
#   scxcheck's own failure path fails on purpose: a running root scheduler is expected to have exited with SCX_EXIT_ERROR
# which failed (exit) at github.com/scxcheck/scxcheck/harness/selftests/selftest.go:21 when it was recorded (see expected.txt).
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

expected_state=failed
expected_location=github.com/scxcheck/scxcheck/harness/selftests/selftest.go:21
expected_fault=""

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "repro.sh: $QEMU not found: install QEMU (Debian, Ubuntu: apt-get install qemu-system-x86; Fedora: dnf install qemu-system-x86)" >&2
	exit 3
fi
rm -rf "$OUT" && mkdir -p "$OUT" || exit 3

set -- -nodefaults -no-user-config -no-reboot -display none -vga none -monitor \
	none -m 1024 -smp 2 -chardev "stdio,id=con,logfile=${OUT}/console.log" \
	-serial chardev:con -device virtio-serial-pci -chardev null,id=ctl \
	-device virtserialport,chardev=ctl,name=scxcheck.ctl -chardev \
	"file,id=ev,path=${OUT}/events.jsonl" -device \
	virtserialport,chardev=ev,name=scxcheck.events -kernel \
	"${here}/vmlinux" -initrd "${here}/initramfs.cpio" -append \
	"console=ttyS0 panic=-1 loglevel=5 8250.nr_uarts=1 scxcheck.timeline=1 scxcheck.repro=eyJ0Ijoic2N4Y2hlY2sncyBvd24gZmFpbHVyZSBwYXRoIGZhaWxzIG9uIHB1cnBvc2U6IGEgcnVubmluZyByb290IHNjaGVkdWxlciBpcyBleHBlY3RlZCB0byBoYXZlIGV4aXRlZCB3aXRoIFNDWF9FWElUX0VSUk9SIiwibCI6WyJzZWxmdGVzdCJdfQ" \
	-chardev "file,id=outcome,path=${OUT}/outcome.txt" -device \
	virtserialport,chardev=outcome,name=scxcheck.outcome
case $ACCEL in
kvm) set -- "$@" -accel kvm -cpu host ;;
tcg) set -- "$@" -accel tcg,thread=single ;;
*) echo "repro.sh: ACCEL must be tcg or kvm, not $ACCEL" >&2; exit 3 ;;
esac
printf '%s\n' "$QEMU" "$@" > "$OUT/qemu-cmdline.txt"

to=
command -v timeout >/dev/null 2>&1 && to="timeout $TIMEOUT"
echo "repro.sh: booting $here/vmlinux ($ACCEL); output in $OUT" >&2
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
