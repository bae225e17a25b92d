// Package fakeqemu writes a stand-in for qemu-system-x86_64 that fails the
// way KVM fails on hosts whose /dev/kvm is a PVM implementation: asked for
// `-accel kvm`, it prints QEMU's "KVM internal error. Suberror: 1" and
// "emulation failure" to stderr and then stays alive, paused, forever, as
// the real QEMU does there. Any other command line runs the real QEMU.
//
// Tests pass it as vm.Config.QEMU or `scxcheck run --qemu`.
package fakeqemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Name is the stand-in's file name.
const Name = "qemu-kvm-emulation-failure"

// PIDFile, beside the stand-in, gets the process id of every KVM boot it
// faked, one per line, so that a test can check none is left running.
const PIDFile = Name + ".pids"

// script is the stand-in. It execs, so the process scxcheck started is the
// one that stays (and that scxcheck must kill).
const script = `#!/bin/sh
# Stand-in for qemu-system-x86_64: fails like KVM on a PVM host, else runs %[1]s.
for a in "$@"; do
	case "$a" in
	kvm|kvm,*)
		echo $$ >> "$(dirname "$0")/%[2]s"
		echo "KVM internal error. Suberror: 1" >&2
		echo "extra data[0]: 0x0000000000000000" >&2
		echo "emulation failure" >&2
		echo "RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000" >&2
		exec sleep infinity
		;;
	esac
done
exec %[1]s "$@"
`

// Write writes the stand-in into dir, running real (a QEMU binary name or
// path, resolved now; "" means qemu-system-x86_64) for non-KVM boots, and
// returns its path.
func Write(dir, real string) (string, error) {
	if real == "" {
		real = "qemu-system-x86_64"
	}
	path, err := exec.LookPath(real)
	if err != nil {
		return "", fmt.Errorf("fake QEMU: %w", err)
	}
	if path, err = filepath.Abs(path); err != nil {
		return "", err
	}
	if strings.ContainsAny(path, "'\"\\$` \t\n") {
		return "", fmt.Errorf("fake QEMU: cannot quote %q", path)
	}
	p := filepath.Join(dir, Name)
	if err := os.WriteFile(p, fmt.Appendf(nil, script, path, PIDFile), 0o755); err != nil {
		return "", err
	}
	return p, nil
}

// PIDs returns the process ids of the KVM boots the stand-in in dir faked.
func PIDs(dir string) []int {
	b, _ := os.ReadFile(filepath.Join(dir, PIDFile))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
