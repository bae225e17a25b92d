// Command scxcheck verifies the Linux kernel's sched_ext cgroup
// sub-schedulers (CONFIG_EXT_SUB_SCHED) on a real kernel in a QEMU VM.
//
// The same binary is the guest agent: started as PID 1 in the VM's
// initramfs, it hands over to package agent (see main).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	_ "github.com/scxcheck/scxcheck/harness/selftests" // the fault matrix, run with --label-filter fault

	"github.com/scxcheck/scxcheck/outcome"

	"github.com/scxcheck/scxcheck/agent"
	"github.com/scxcheck/scxcheck/repro"
)

// Exit codes, documented in the usage text (outcome.Exit*).
const (
	exitPass  = outcome.ExitPass
	exitFail  = outcome.ExitFail
	exitUsage = outcome.ExitUsage
	exitInfra = outcome.ExitInfra
)

const usage = `scxcheck verifies sched_ext cgroup sub-schedulers (CONFIG_EXT_SUB_SCHED) on a
real kernel in a QEMU VM: it boots the kernel with a guest agent, loads fixture
BPF schedulers and checks what the kernel does.

Usage:
  scxcheck run [flags]            run the suites against a kernel (default: Debian's, fetched on first use)
  scxcheck soak [--runs N] [run flags]
                                  run the suites N times, each in a fresh process: wall times, every failure
  scxcheck kernel fetch [flags]   fetch Debian's prebuilt kernel with sub-schedulers into the cache
  scxcheck kernel build [flags]   build a kernel from source (default: Debian's linux-source) for scxcheck
  scxcheck kernel prune [flags]   free space: remove old built kernels and build directories of gone trees
  scxcheck bench boot [flags]     benchmark boot to agent-ready against a bare boot of the same kernel
  scxcheck bench build [flags]    benchmark a full, an incremental and a cached kernel build
  scxcheck bench coverage [flags] the cost of --coverage: build and suite times with and without, same verdicts
  scxcheck repro --out DIR [flags]  write reproduction bundles: replay a spec with only QEMU installed
  scxcheck report --artifacts DIR --out DIR
                                  render a run's artifacts as an HTML report (run --report does it too)
  scxcheck bisect --tree DIR --good REV --bad REV [flags]
                                  find the kernel commit that broke a spec (git bisect run)
  scxcheck mutate [flags]         mutation testing of a patch's changed lines: which slips would the specs miss
  scxcheck help [command]         show help for a command

Run 'scxcheck <command> --help' for a command's flags.

Exit codes:
  0  every spec passed (skipped specs are reported, not counted as passes)
  1  a spec failed
  2  usage error or bad input (unknown flag, missing kernel, kernel without sched_ext;
     a --tree that is no kernel tree, a patch that does not apply, a config that loses
     a requested symbol, a kernel that does not compile)
  3  infrastructure error (QEMU missing, kernel did not boot, mirror unreachable)
`

// main chooses the process's role, once: the binary is the command line
// tool, the VM's init (the guest agent, which can also replay a spec from a
// reproduction bundle), or a workload worker the agent started. A parallel
// or matrix child is the command line tool too, told its place by its
// environment (parallel.go, matrix.go).
func main() {
	switch {
	case agent.IsWorker():
		agent.WorkerMain()
	case os.Getpid() == 1:
		agent.Main(agent.Config{Replay: repro.ReplayInGuest})
	}
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

// Main runs the command line args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, args, stdout, stderr)
	if err == nil {
		return exitPass
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "scxcheck: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "scxcheck: %v\n", err)
	return exitInfra
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{code: exitUsage}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	case "help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return dispatch(ctx, append(rest, "--help"), stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "kernel":
		switch {
		case len(rest) > 0 && rest[0] == "fetch":
			return cmdKernelFetch(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "build":
			return cmdKernelBuild(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "prune":
			return cmdKernelPrune(ctx, rest[1:], stdout, stderr)
		}
		return usageErrorf("kernel: want a subcommand: 'scxcheck kernel fetch', 'scxcheck kernel build' or 'scxcheck kernel prune'")
	case "soak":
		return cmdSoak(ctx, rest, stdout, stderr)
	case "bench":
		switch {
		case len(rest) > 0 && rest[0] == "boot":
			return cmdBenchBoot(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "build":
			return cmdBenchBuild(ctx, rest[1:], stdout, stderr)
		case len(rest) > 0 && rest[0] == "coverage":
			return cmdBenchCoverage(ctx, rest[1:], stdout, stderr)
		}
		return usageErrorf("bench: want a benchmark: 'scxcheck bench boot', 'scxcheck bench build' or 'scxcheck bench coverage'")
	case "repro":
		return cmdRepro(ctx, rest, stdout, stderr)
	case "report":
		return cmdReport(ctx, rest, stdout, stderr)
	case "bisect":
		return cmdBisect(ctx, rest, stdout, stderr)
	case "mutate":
		return cmdMutate(ctx, rest, stdout, stderr)
	case "bisect-step": // run by git bisect run, not documented
		return cmdBisectStep(ctx, rest, stdout, stderr)
	default:
		return usageErrorf("unknown command %q (run 'scxcheck --help')", cmd)
	}
}

// exitError carries an exit code; err, if set, is printed as one line.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func badInput(err error) error { return exitError{code: exitUsage, err: err} }

func infraError(err error) error { return exitError{code: exitInfra, err: err} }

// newFlagSet returns a flag set that prints its usage to stdout on --help and
// reports parse errors as usage errors.
func newFlagSet(name, summary string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: scxcheck %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// makeStyleJobs rewrites make's -jN (and --jN) into -j=N, which package
// flag understands, so that a kernel developer's habit works.
func makeStyleJobs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name := strings.TrimLeft(a, "-")
		if dashes := len(a) - len(name); dashes == 1 || dashes == 2 {
			if n, ok := strings.CutPrefix(name, "j"); ok {
				if _, err := strconv.Atoi(n); err == nil {
					a = "-j=" + n
				}
			}
		}
		out = append(out, a)
	}
	return out
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if fs.Lookup("j") != nil {
		args = makeStyleJobs(args)
	}
	// Package flag calls Usage on every parse error; print it only for --help.
	usage := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return err
		}
		return usageErrorf("%s: %v (run 'scxcheck %s --help')", fs.Name(), err, fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErrorf("%s: unexpected argument %q (run 'scxcheck %s --help')", fs.Name(), fs.Arg(0), fs.Name())
	}
	return nil
}
