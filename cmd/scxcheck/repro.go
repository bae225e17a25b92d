package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/outcome"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/repro"
	"github.com/scxcheck/scxcheck/suites"
)

func cmdRepro(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		k           kernelFlags
		out         string
		focus       string
		labelFilter string
		verbose     bool
	)
	fs := newFlagSet("repro", `Runs the selected specs against a kernel and writes, for each spec that ran, a
reproduction bundle into DIR/<spec>/: the kernel image (and its .config when
known), an initramfs whose /init is scxcheck itself, the exact QEMU command line,
the recorded outcome (expected.txt), the run's logs, and repro.sh, which replays
the spec with only qemu-system-x86_64 installed and says whether it reproduced
the recorded outcome (exit 0) or not (exit 1).

'scxcheck run --artifacts DIR' writes a bundle for every failing spec by itself,
in DIR/<spec>/repro/.

Example: scxcheck repro --out bundles --focus 'dispatches its grandchild'`, stdout)
	k.register(fs)
	fs.StringVar(&out, "out", "", "write the bundles into this `directory` (required)")
	fs.StringVar(&focus, "focus", "", "only the specs whose text matches this `regexp`")
	fs.StringVar(&labelFilter, "label-filter", "", "only the specs matching this Ginkgo label `expression`")
	fs.BoolVar(&verbose, "v", false, "verbose Ginkgo output")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if out == "" {
		return usageErrorf("repro: --out DIR is required")
	}
	if err := checkLabelFilter(labelFilter); err != nil {
		return err
	}
	t, err := k.resolve(ctx, stderr)
	if err != nil {
		return err
	}
	img, accel, threads := t.img, t.accel, t.threads
	logs, err := os.MkdirTemp("", "scxcheck-repro-logs-")
	if err != nil {
		return infraError(err)
	}
	defer os.RemoveAll(logs)
	w := &repro.Writer{Kernel: img, Binary: self()}
	defer w.Close()

	var written []string
	var bundleErr error
	suiteConfig := types.NewDefaultSuiteConfig()
	suiteConfig.LabelFilter = labelFilter
	if focus != "" {
		suiteConfig.FocusStrings = []string{focus}
	}
	suiteConfig.Timeout = time.Hour
	reporterConfig := types.NewDefaultReporterConfig()
	reporterConfig.Verbose = verbose
	reporterConfig.NoColor = !isTerminal(os.Stdout)
	fmt.Fprintf(stderr, "scxcheck: kernel %s\n", img.Boot)
	res := suites.Run(&fakeT{}, harness.Options{
		Kernel:     img.Boot,
		Accel:      accel,
		TCGThreads: threads,
		QEMU:       k.qemu,
		Artifacts:  logs,
		Log:        func(format string, args ...any) { fmt.Fprintf(stderr, "scxcheck: "+format+"\n", args...) },
		OnSpec: func(rec harness.SpecRecord) {
			if rec.State == "skipped" || rec.Class == outcome.Infra {
				return
			}
			dir := filepath.Join(out, rec.Slug)
			if err := w.Write(dir, rec); err != nil {
				fmt.Fprintf(stderr, "scxcheck: %v\n", err)
				bundleErr = err
				return
			}
			written = append(written, fmt.Sprintf("%s: %s", bundleOutcome(rec), filepath.Join(dir, repro.ScriptName)))
		},
	}, suiteConfig, reporterConfig)
	fmt.Fprint(stdout, res.Summary())
	for _, l := range written {
		fmt.Fprintf(stdout, "bundle %s\n", l)
	}
	switch {
	case res.Infra != nil:
		return infraError(res.Infra)
	case bundleErr != nil:
		return infraError(fmt.Errorf("writing a bundle failed: %w", bundleErr))
	case len(written) == 0:
		return usageErrorf("repro: no spec ran, so no bundle was written (check --focus and --label-filter)")
	}
	return nil
}

func bundleOutcome(rec harness.SpecRecord) string {
	if rec.Failed() {
		return fmt.Sprintf("%s (%s)", rec.State, rec.Class)
	}
	return rec.State
}

// failureBundles returns the OnSpec hook of `scxcheck run --artifacts`: a
// reproduction bundle in <artifacts>/<spec>/repro/ for every spec that
// failed (not for infrastructure failures: nothing to replay), and a
// function to call when the run is over. Without artifacts it does nothing.
func failureBundles(img *kernel.Image, artifacts string, stderr io.Writer) (func(harness.SpecRecord), func()) {
	if artifacts == "" {
		return nil, func() {}
	}
	w := &repro.Writer{Kernel: img, Binary: self()}
	return func(rec harness.SpecRecord) {
		if !rec.Failed() || rec.Class == outcome.Infra || rec.Dir == "" {
			return
		}
		dir := filepath.Join(rec.Dir, "repro")
		if err := w.Write(dir, rec); err != nil {
			fmt.Fprintf(stderr, "scxcheck: no reproduction bundle: %v\n", err)
			return
		}
		fmt.Fprintf(stderr, "scxcheck: reproduction bundle: %s\n", filepath.Join(dir, repro.ScriptName))
	}, func() { w.Close() }
}

// self is this executable: the scxcheck binary, which a reproduction
// bundle boots as /init. "" when the system cannot say (the bundle writer
// then builds one).
func self() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}
