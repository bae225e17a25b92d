package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"rsc.io/script"
	"rsc.io/script/scripttest"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
)

// The script tests in testdata/*.txt run this test binary as the scxcheck
// command: with SCXCHECK_TEST_MAIN=1 it behaves exactly as the real binary.
func TestMain(m *testing.M) {
	if os.Getenv("SCXCHECK_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestScripts(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	engine := script.NewEngine()
	engine.Cmds = scripttest.DefaultCmds()
	engine.Conds = scripttest.DefaultConds()
	engine.Cmds["scxcheck"] = scxcheckCmd(self)
	engine.Cmds["status"] = statusCmd()
	engine.Cmds["mkelf"] = mkelfCmd()
	engine.Cmds["truncate"] = truncateCmd()
	registerFaultScripts(t, engine)
	engine.Conds["net"] = script.BoolCondition("the Debian mirror can be reached (SCXCHECK_OFFLINE unset)", os.Getenv("SCXCHECK_OFFLINE") == "")
	engine.Conds["kvmdev"] = script.BoolCondition("the host has a /dev/kvm it may open for writing (the KVM probe starts QEMU only then)", unix.Access("/dev/kvm", unix.W_OK) == nil)

	env := append(os.Environ(), "SCXCHECK_TEST_MAIN=1")
	scripttest.Test(t, t.Context(), engine, env, "testdata/*.txt")
}

// scxcheckCmd runs the CLI and records its exit code for `status`.
func scxcheckCmd(bin string) script.Cmd {
	return script.Command(script.CmdUsage{Summary: "run scxcheck", Args: "args..."},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			cmd := exec.CommandContext(s.Context(), bin, args...)
			cmd.Dir = s.Getwd()
			cmd.Env = s.Environ()
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.WaitDelay = 5 * time.Second
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			return func(s *script.State) (string, string, error) {
				err := cmd.Wait()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					return stdout.String(), stderr.String(), err
				}
				s.Setenv("STATUS", strconv.Itoa(code))
				if code != 0 {
					err = fmt.Errorf("exit status %d", code)
				}
				return stdout.String(), stderr.String(), err
			}, nil
		})
}

// statusCmd checks the exit code of the last scxcheck command.
func statusCmd() script.Cmd {
	return script.Command(script.CmdUsage{Summary: "check the last scxcheck exit code", Args: "code"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			got, _ := s.LookupEnv("STATUS")
			if got != args[0] {
				return nil, fmt.Errorf("scxcheck exited %s, want %s", got, args[0])
			}
			return nil, nil
		})
}

// mkelfCmd writes a tiny x86-64 ELF with a PVH note: something that passes
// for a vmlinux until it is booted.
func mkelfCmd() script.Cmd {
	return script.Command(script.CmdUsage{Summary: "write a small x86-64 ELF file", Args: "file"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			return nil, os.WriteFile(s.Path(args[0]), kerneltest.ELF("7.2.0-scxcheck-test", true), 0o644)
		})
}

// truncateCmd cuts every file matching a glob to half its size, as an
// interrupted download or a full disk would leave it.
func truncateCmd() script.Cmd {
	return script.Command(script.CmdUsage{Summary: "truncate files to half their size", Args: "glob"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			files, err := filepath.Glob(s.Path(args[0]))
			if err != nil || len(files) == 0 {
				return nil, fmt.Errorf("no file matches %s", args[0])
			}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					return nil, err
				}
				if err := os.Truncate(f, fi.Size()/2); err != nil {
					return nil, err
				}
			}
			return nil, nil
		})
}
