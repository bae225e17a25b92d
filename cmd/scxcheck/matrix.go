package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/scxcheck/scxcheck/internal/junit"
	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel"
)

// `scxcheck run --kernel A --kernel B ...` tests several kernels in one run:
// each kernel gets its own child `scxcheck run` (its own VMs, with --procs
// as asked), its own artifacts directory and JUnit file, and the summary is
// one table, spec × kernel, with each skip's reason.

// resultFileEnv names a file where `scxcheck run` writes its result
// (childResult) for the matrix parent.
const resultFileEnv = "SCXCHECK_RESULT_FILE"

// matrixFlags are the flags the matrix parent handles itself.
var matrixFlags = map[string]bool{"junit": true, "artifacts": true, "json-report": true}

// matrixKernel is one column of the matrix.
type matrixKernel struct {
	spec  string // as given to --kernel
	img   *kernel.Image
	label string // column heading and directory name: the release
}

func kernelLabel(img *kernel.Image, spec string) string {
	l := img.Release
	if l == "" {
		l = filepath.Base(spec)
	}
	return strings.NewReplacer("/", "_", " ", "_").Replace(l)
}

func runMatrix(ctx context.Context, fs *flag.FlagSet, k *kernelFlags, junitPath, artifacts string, stdout, stderr io.Writer) error {
	if k.build.requested() {
		return usageErrorf("run: --tree/--patch build one kernel; test several with --kernel only")
	}
	if f := fs.Lookup("repeat"); f != nil && f.Value.String() != "1" {
		return usageErrorf("run: --repeat with several --kernel is not supported; repeat each kernel on its own")
	}
	if _, err := k.accelerator(); err != nil {
		return err
	}
	if err := k.checkQEMU(); err != nil {
		return err
	}
	var cols []matrixKernel
	seen := map[string]bool{}
	for _, spec := range k.kernels {
		k.kernel = spec
		img, err := k.prebuilt(ctx, stderr)
		if err != nil {
			return err
		}
		label := kernelLabel(img, spec)
		for seen[label] {
			label += "+"
		}
		seen[label] = true
		cols = append(cols, matrixKernel{spec: spec, img: img, label: label})
	}

	self, err := os.Executable()
	if err != nil {
		return infraError(err)
	}
	dir, err := os.MkdirTemp("", "scxcheck-matrix-")
	if err != nil {
		return infraError(err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "scxcheck: %d kernels: %s\n", len(cols), strings.Join(labels(cols), ", "))

	var parts []junit.Part
	results := make([]childResult, len(cols))
	reports := make([][]runner.SpecResult, len(cols))
	exits := make([]int, len(cols))
	for i, c := range cols {
		args := childRunArgs(fs, c.img.Boot, matrixFlags)
		report := filepath.Join(dir, c.label+".json")
		args = append(args, "--json-report="+report)
		if junitPath != "" {
			p := junitPart(junitPath, c.label)
			args = append(args, "--junit="+p)
			parts = append(parts, junit.Part{Path: p, Suite: "scxcheck on " + c.label})
		}
		if artifacts != "" {
			args = append(args, "--artifacts="+filepath.Join(artifacts, c.label))
		}
		fmt.Fprintf(stderr, "scxcheck: kernel %d/%d: %s (%s)\n", i+1, len(cols), c.label, c.img.Boot)
		began := time.Now()
		resFile := filepath.Join(dir, c.label+".result.json")
		exits[i] = runChild(ctx, self, args, resFile, &prefixWriter{w: stderr, prefix: "[" + c.label + "] "})
		if b, err := os.ReadFile(resFile); err == nil {
			_ = json.Unmarshal(b, &results[i])
		}
		reports[i], _ = runner.ReadReport(report)
		fmt.Fprintf(stderr, "scxcheck: kernel %s done in %s, exit %d\n", c.label, time.Since(began).Round(time.Second), exits[i])
		if ctx.Err() != nil {
			break
		}
	}

	fmt.Fprint(stdout, matrixTable(cols, reports, results, exits))
	if junitPath != "" {
		var have []junit.Part
		for _, p := range parts {
			if _, err := os.Stat(p.Path); err == nil {
				have = append(have, p)
			}
		}
		if len(have) > 0 {
			if err := junit.Merge(junitPath, have); err != nil {
				fmt.Fprintf(stderr, "scxcheck: %v\n", err)
			}
		}
	}

	tested, failed := 0, false
	var infra []string
	for i, c := range cols {
		tested += results[i].Passed + results[i].Failed
		switch exits[i] {
		case exitPass:
		case exitFail:
			failed = true
		default:
			infra = append(infra, fmt.Sprintf("%s: exit %d", c.label, exits[i]))
		}
	}
	switch {
	case ctx.Err() != nil:
		return infraError(fmt.Errorf("interrupted: the kernels after the interruption were not tested"))
	case len(infra) > 0:
		return infraError(fmt.Errorf("not every kernel was tested (%s)", strings.Join(infra, "; ")))
	case failed:
		return exitError{code: exitFail}
	case tested == 0:
		return infraError(errNothingTested)
	}
	return nil
}

// junitPart is the JUnit file of one kernel: junit.xml → junit-<label>.xml.
func junitPart(path, label string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + label + ext
}

func labels(cols []matrixKernel) []string {
	var out []string
	for _, c := range cols {
		out = append(out, c.label)
	}
	return out
}

// runChild runs one kernel's `scxcheck run` and returns its exit code (-1
// if it could not run or was killed). An interrupt reaches it once, from
// here, as in a parallel run.
func runChild(ctx context.Context, self string, args []string, resFile string, out *prefixWriter) int {
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), resultFileEnv+"="+resFile)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "scxcheck: start: %v\n", err)
		out.Flush()
		return -1
	}
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGINT)
		case <-done:
		}
	}()
	err := cmd.Wait()
	close(done)
	out.Flush()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
		return ee.ExitCode()
	}
	return -1
}

// matrixTable is the summary of a matrix run: one row per spec, one column
// per kernel (ok, FAIL, skip with a numbered reason, - for not run), then
// the skip reasons and a line per kernel.
func matrixTable(cols []matrixKernel, reports [][]runner.SpecResult, results []childResult, exits []int) string {
	var order []string
	cells := map[string][]string{}
	var reasons []string
	reasonNo := map[string]int{}
	for i, rep := range reports {
		for _, s := range rep {
			if _, ok := cells[s.Text]; !ok {
				order = append(order, s.Text)
				cells[s.Text] = make([]string, len(cols))
			}
			cell := "ok"
			switch {
			case s.Failed():
				cell = "FAIL"
			case s.State == "skipped":
				why := cols[i].label + ": " + strings.TrimSpace(s.Failure)
				if reasonNo[why] == 0 {
					reasons = append(reasons, why)
					reasonNo[why] = len(reasons)
				}
				cell = fmt.Sprintf("skip[%d]", reasonNo[why])
			}
			cells[s.Text][i] = cell
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(labels(cols), "\t")+"\tspec")
	for _, text := range order {
		row := cells[text]
		for i := range row {
			if row[i] == "" {
				row[i] = "-"
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t"+text)
	}
	tw.Flush()
	for i, r := range reasons {
		fmt.Fprintf(&b, "  [%d] %s\n", i+1, r)
	}
	for i, c := range cols {
		r := results[i]
		line := fmt.Sprintf("scxcheck: %s: %d passed, %d failed, %d skipped", c.label, r.Passed, r.Failed, r.Skipped)
		if r.API != "" {
			line += ", sub-scheduler API " + r.API
		}
		if exits[i] != exitPass && exits[i] != exitFail {
			line += fmt.Sprintf(" (exit %d: not fully tested)", exits[i])
			if r.Infra != "" {
				line += ": " + r.Infra
			}
		}
		fmt.Fprintln(&b, line)
	}
	return b.String()
}
