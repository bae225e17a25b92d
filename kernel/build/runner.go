package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Errors wrapped by this package's errors, for callers to tell bad input
// from infrastructure trouble with errors.Is. A requested config symbol that
// does not survive olddefconfig wraps kernel.ErrConfig.
var (
	// ErrNotTree: the directory is no kernel source tree scxcheck can build.
	ErrNotTree = errors.New("not a kernel source tree")
	// ErrPatch: a patch is unreadable, holds no diff, or does not apply.
	ErrPatch = errors.New("patch does not apply")
	// ErrFragment: a config fragment or base config is unreadable or malformed.
	ErrFragment = errors.New("bad config fragment")
	// ErrToolchain: a tool or header the kernel build needs is missing.
	ErrToolchain = errors.New("kernel build toolchain incomplete")
	// ErrBuild: the kernel's make failed.
	ErrBuild = errors.New("kernel build failed")
)

// Runner runs the external commands of a build: make, patch, git, gcc.
// Tests substitute a fake.
type Runner interface {
	Run(ctx context.Context, c *Cmd) error
}

// Cmd is a command for a Runner.
type Cmd struct {
	Dir    string
	Name   string
	Args   []string
	Env    []string // added to the environment
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

func (c *Cmd) String() string { return strings.Join(append([]string{c.Name}, c.Args...), " ") }

// ExecRunner runs commands with os/exec in the C locale.
type ExecRunner struct{}

func (ExecRunner) Run(ctx context.Context, c *Cmd) error {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), c.Env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	// On cancellation the whole process group gets SIGTERM: make's
	// compilers too, and make removes its half-written targets.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// output runs a command and returns its standard output; a failure's error
// carries the last line of its standard error.
func output(ctx context.Context, r Runner, dir, name string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	err := r.Run(ctx, &Cmd{Dir: dir, Name: name, Args: args, Stdout: &out, Stderr: &errb})
	if err != nil {
		if msg := lastLine(errb.String()); msg != "" {
			return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return out.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

// wrapError has a message of its own and matches the errors it wraps.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// logError is a build that failed after its log was started.
type logError struct {
	err error
	log string
}

func (e *logError) Error() string { return e.err.Error() }
func (e *logError) Unwrap() error { return e.err }

// FailedLog returns the build log of the build that err ended, or "" when
// err came before the build wrote a log.
func FailedLog(err error) string {
	var le *logError
	if errors.As(err, &le) {
		return le.log
	}
	return ""
}
