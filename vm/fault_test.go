package vm

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/outcome"
)

// exitedMachine is a Machine whose QEMU has gone with exitErr, after
// printing console.
func exitedMachine(t *testing.T, exitErr error, console ...string) *Machine {
	t.Helper()
	m := &Machine{console: newConsole(), exited: make(chan struct{}), exitErr: exitErr}
	for _, l := range console {
		m.console.add(l)
	}
	close(m.exited)
	return m
}

// exitError runs a shell command to get the *exec.ExitError it ends with.
func exitError(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("/bin/sh", "-c", script).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("sh -c %q: %v, want an exit error", script, err)
	}
	return err
}

func TestDiagnose(t *testing.T) {
	boot := []string{"[    0.1] Linux version 7.2.13", "[    1.0] Run /init as init process"}
	for _, tc := range []struct {
		name    string
		m       func() *Machine
		since   int
		class   outcome.Class
		kind    string
		line    string
		excerpt string
	}{
		{
			name: "kernel panic",
			m: func() *Machine {
				return exitedMachine(t, nil, append(boot, "[    3.0] sysrq: Trigger a crash",
					"[    3.0] Kernel panic - not syncing: sysrq triggered crash", "[    3.0] CPU: 1 PID: 1 Comm: init")...)
			},
			class: outcome.Crash, kind: "kernel panic", line: "[    3.0] Kernel panic - not syncing: sysrq triggered crash",
			excerpt: "sysrq: Trigger a crash",
		},
		{
			name: "init exited",
			m: func() *Machine {
				return exitedMachine(t, nil, append(boot, "scxcheck-agent: control port: EOF",
					"[    3.7] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300")...)
			},
			class: outcome.Agent, kind: KindAgentDied, line: "[    3.7] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300",
			excerpt: "scxcheck-agent: control port: EOF",
		},
		{
			name: "a fault before the spec does not count",
			m: func() *Machine {
				m := exitedMachine(t, nil, append(boot, "[    2.0] WARNING: CPU: 0 PID: 1 at foo")...)
				m.poweringOff.Store(true)
				return m
			},
			since: 1,
		},
		{
			name:  "QEMU killed from outside",
			m:     func() *Machine { return exitedMachine(t, exitError(t, "kill -9 $$"), boot...) },
			class: outcome.Infra, kind: KindQEMUKilled, line: "QEMU was killed by signal killed (not sent by scxcheck)",
		},
		{
			name: "QEMU killed by Close",
			m: func() *Machine {
				m := exitedMachine(t, exitError(t, "kill -9 $$"), boot...)
				m.closing.Store(true)
				return m
			},
		},
		{
			name:  "QEMU failed",
			m:     func() *Machine { return exitedMachine(t, exitError(t, "exit 1"), boot...) },
			class: outcome.Infra, kind: KindQEMUExited, line: "QEMU exited with status 1",
		},
		{
			name: "the agent powered off on its own",
			m: func() *Machine {
				return exitedMachine(t, nil, append(boot, "scxcheck-agent: virtio-serial port scxcheck.ctl not found", "[    2.0] reboot: Power down")...)
			},
			class: outcome.Agent, kind: KindAgentExited,
			line: "the guest powered off without being asked: scxcheck-agent: virtio-serial port scxcheck.ctl not found",
		},
		{
			name: "power off on request",
			m: func() *Machine {
				m := exitedMachine(t, nil, boot...)
				m.poweringOff.Store(true)
				return m
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.m().Diagnose(tc.since)
			if tc.class == "" {
				if v != nil {
					t.Fatalf("Diagnose = %v, want nil", v)
				}
				return
			}
			if v == nil {
				t.Fatal("Diagnose = nil")
			}
			if v.Class != tc.class || v.Kind != tc.kind || v.Line != tc.line {
				t.Errorf("Diagnose = {%s %q %q}, want {%s %q %q}", v.Class, v.Kind, v.Line, tc.class, tc.kind, tc.line)
			}
			if !strings.Contains(v.Excerpt, tc.excerpt) {
				t.Errorf("excerpt %q lacks %q", v.Excerpt, tc.excerpt)
			}
		})
	}
}

func TestDiagnoseWaitsForThePanicToEnd(t *testing.T) {
	m := &Machine{console: newConsole(), exited: make(chan struct{})}
	m.console.add("[    3.0] Kernel panic - not syncing: Fatal exception")
	go func() {
		time.Sleep(200 * time.Millisecond)
		m.console.add("[    3.1] ---[ end Kernel panic - not syncing: Fatal exception ]---")
		close(m.exited)
	}()
	v := m.Diagnose(0)
	if v == nil || !strings.Contains(v.Excerpt, "end Kernel panic") {
		t.Fatalf("Diagnose = %v, want the whole panic in the excerpt", v)
	}
}

func TestDiagnoseAliveAndHealthy(t *testing.T) {
	m := &Machine{console: newConsole(), exited: make(chan struct{})}
	m.console.add("[    1.0] Run /init as init process")
	if v := m.Diagnose(0); v != nil {
		t.Fatalf("Diagnose = %v, want nil", v)
	}
}

func TestNoAnswer(t *testing.T) {
	err := fmt.Errorf("agent call Reset: %w: %w\nconsole tail:\n...", ErrNoAnswer, errors.New("context deadline exceeded"))
	v := NoAnswer(err)
	if v == nil || v.Class != outcome.Agent || v.Kind != KindAgentNoAnswer || v.Line != "agent call Reset: no answer: context deadline exceeded" {
		t.Fatalf("NoAnswer = %+v", v)
	}
	if NoAnswer(errors.New("agent call Reset: no such scheduler")) != nil {
		t.Error("NoAnswer of a remote error is a verdict")
	}
}
