package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/scxcheck/scxcheck/report"
)

// `scxcheck run --report DIR` collects timelines (--timeline) and, once the
// run is over, renders its artifacts as an HTML report into DIR (package
// report); `scxcheck report` renders the artifacts of an earlier run.

// reportDefaults makes --report DIR imply --timeline and put the artifacts
// and the JUnit report into DIR unless they were given. fs.Set marks them
// as set, so that the child runs of a parallel, matrix or repeated run get
// them too.
func reportDefaults(fs *flag.FlagSet, dir string) error {
	if err := fs.Set("timeline", "true"); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, file := range map[string]string{"artifacts": "artifacts", "junit": "junit.xml"} {
		if !set[name] {
			if err := fs.Set(name, filepath.Join(dir, file)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeReport renders the run's artifacts into dir; a run that stopped
// before its first spec has none, and its report says that nothing was
// tested. A report that cannot be written is said, and does not change the
// run's exit code.
func writeReport(dir, artifacts, junit string, stderr io.Writer) {
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		fmt.Fprintf(stderr, "scxcheck: report: %v\n", err)
		return
	}
	if err := renderReport(dir, artifacts, junit); err != nil {
		fmt.Fprintf(stderr, "scxcheck: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "scxcheck: report: %s\n", filepath.Join(dir, "index.html"))
}

func renderReport(dir, artifacts, junit string) error {
	r, err := report.Build(artifacts, report.Options{JUnit: junit})
	if err != nil {
		return err
	}
	return report.Write(r, dir)
}

func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var artifacts, out, junit string
	fs := newFlagSet("report", `Renders the artifacts of a run (scxcheck run --artifacts DIR, or ci/gate's
out/artifacts) as a static HTML report: index.html with the run's summary and a page
per spec. Specs of a run with timelines (--report or --timeline) get their CPU lanes.
Example: scxcheck report --artifacts out/artifacts --out out/report`, stdout)
	fs.StringVar(&artifacts, "artifacts", "", "the run's artifacts `directory` (required)")
	fs.StringVar(&out, "out", "", "write the report into this `directory` (required)")
	fs.StringVar(&junit, "junit", "", "the run's JUnit report `file`, for what was tested (default: junit.xml in or beside the artifacts directory)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if artifacts == "" || out == "" {
		return usageErrorf("report: --artifacts DIR and --out DIR are required")
	}
	if _, err := os.Stat(artifacts); err != nil {
		return badInput(fmt.Errorf("report: %w", err))
	}
	if err := renderReport(out, artifacts, junit); err != nil {
		return badInput(err)
	}
	fmt.Fprintln(stdout, filepath.Join(out, "index.html"))
	return nil
}
