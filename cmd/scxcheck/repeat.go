package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel"
)

// kernelSourceFlags choose the kernel to test. A repeated run resolves the
// kernel once (fetching or building it) and gives each child run the
// result as --kernel, so these are not passed on.
var kernelSourceFlags = map[string]bool{
	"kernel": true, "cache": true, "mirror": true,
	"tree": true, "patch": true, "no-test-patch": true, "base": true, "config": true, "pahole": true, "j": true, "force": true,
}

// repeatFlags are the flags a repeated run handles itself.
var repeatFlags = map[string]bool{"repeat": true, "junit": true, "artifacts": true, "json-report": true}

// childRunArgs returns the arguments of a child `scxcheck run` of a repeated,
// parallel or matrix run: `run --kernel=<kernel>`, then every flag the user
// set except the kernel source flags (the parent resolved the kernel once),
// those the parent handles itself (skip) and --report (the parent writes
// the report; the children collect what it draws, --timeline).
func childRunArgs(fs *flag.FlagSet, kernel string, skip map[string]bool) []string {
	args := []string{"run", "--kernel=" + kernel}
	fs.Visit(func(f *flag.Flag) {
		if kernelSourceFlags[f.Name] || skip[f.Name] || f.Name == "report" {
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	})
	return args
}

// runRepeated runs the selected specs n times, each run a child `scxcheck
// run` with its own JSON report, and reports each spec's pass rate and the
// verdict (runner.Aggregate). With artifacts, run i keeps its artifacts and
// JUnit report in <artifacts>/run-<i>/ and the summary goes to
// <artifacts>/summary.json; junit gets one test case per spec.
func runRepeated(ctx context.Context, fs *flag.FlagSet, img *kernel.Image, n int, junit, artifacts string, stdout, stderr io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	dir := artifacts
	if dir == "" {
		if dir, err = os.MkdirTemp("", "scxcheck-repeat-"); err != nil {
			return infraError(err)
		}
		defer os.RemoveAll(dir)
	}
	cfg := runner.Config{
		Command: append([]string{self}, childRunArgs(fs, img.Boot, repeatFlags)...),
		Runs:    n,
		Dir:     dir,
		Stdout:  stderr,
		Stderr:  stderr,
		Progress: func(r runner.Run) {
			passed, failed := 0, 0
			for _, s := range r.Specs {
				if s.Failed() {
					failed++
				} else if s.State == "passed" {
					passed++
				}
			}
			fmt.Fprintf(stderr, "scxcheck: run %d/%d exited %d: %d passed, %d failed (%s)\n", r.Index, n, r.ExitCode, passed, failed, r.Duration.Round(time.Second))
		},
	}
	if artifacts != "" {
		cfg.PerRun = func(i int) []string {
			d := filepath.Join(artifacts, fmt.Sprintf("run-%d", i))
			return []string{"--artifacts=" + d, "--junit=" + filepath.Join(d, "junit.xml")}
		}
	}
	fmt.Fprintf(stderr, "scxcheck: %d runs of: %s %v\n", n, filepath.Base(self), cfg.Command[1:])
	runs, err := runner.Repeat(ctx, cfg)
	if err != nil && len(runs) == 0 {
		return infraError(err)
	}
	sum := runner.Aggregate(runs)
	if ctx.Err() != nil {
		sum.Verdict, sum.Reason = runner.Infra, fmt.Sprintf("interrupted after %d of %d runs", len(runs), n)
	}
	fmt.Fprint(stdout, sum.Table())
	if junit != "" {
		if err := sum.WriteJUnit(junit, "scxcheck"); err != nil {
			fmt.Fprintf(stderr, "scxcheck: write JUnit report: %v\n", err)
		}
	}
	if artifacts != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(filepath.Join(artifacts, "summary.json"), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		}
	}
	switch sum.ExitCode() {
	case exitPass:
		return nil
	case exitFail:
		return exitError{code: exitFail}
	}
	return infraError(fmt.Errorf("%s", sum.Reason))
}
