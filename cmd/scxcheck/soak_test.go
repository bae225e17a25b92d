package main

import (
	"strings"
	"testing"
	"time"

	"github.com/scxcheck/scxcheck/outcome"

	"github.com/scxcheck/scxcheck/internal/runner"
)

func TestSoakReportLeavesInterruptedRunsOutOfTheCountsAndTimes(t *testing.T) {
	done := []soakRun{
		{Run: runner.Run{Index: 1, ExitCode: 0, Duration: 4 * time.Minute}},
		{Run: runner.Run{Index: 2, ExitCode: 1, Duration: 5 * time.Minute,
			Specs: []runner.SpecResult{{Text: "a spec", State: "failed", Class: outcome.Assertion, Failure: "expected x\nmore"}}}},
		{Run: runner.Run{Index: 3, ExitCode: 3, Duration: 6 * time.Minute, Err: "exit 3"}},
		{Run: runner.Run{Index: 4, ExitCode: 3, Duration: 10 * time.Second}, interrupted: true},
	}
	got := soakReport(done, 20)
	for _, want := range []string{
		"4 of 20 runs: 1 passed, 1 failed, 0 hung, 1 infrastructure, 1 interrupted\n",
		"wall time per run: min 4m0s, median 5m0s, max 6m0s\n",
		"run 2: [assertion] a spec\n      expected x\n",
		"run 4: interrupted",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if got := soakReport(done[:1], 1); strings.Contains(got, "interrupted") {
		t.Errorf("a soak without interruption mentions one:\n%s", got)
	}
}
