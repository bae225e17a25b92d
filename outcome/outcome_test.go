package outcome

import (
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func spec(state types.SpecState, classes ...Class) types.SpecReport {
	r := types.SpecReport{State: state, Failure: types.Failure{Message: "kernel kernel panic during the spec: looks like a crash"}}
	for _, c := range classes {
		r.ReportEntries = append(r.ReportEntries, types.ReportEntry{Name: EntryName, Value: types.WrapEntryValue(string(c))})
	}
	r.ReportEntries = append(r.ReportEntries, types.ReportEntry{Name: "console tail", Value: types.WrapEntryValue("crash")})
	return r
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    types.SpecReport
		want Class
	}{
		{"passed, whatever it recorded", spec(types.SpecStatePassed, Crash), None},
		{"skipped", spec(types.SpecStateSkipped), None},
		// The message reads like a crash; only the recorded class counts.
		{"failed without a class", spec(types.SpecStateFailed), Assertion},
		{"panicked", spec(types.SpecStatePanicked), Assertion},
		{"exit", spec(types.SpecStateFailed, Exit), Exit},
		{"the most severe of several", spec(types.SpecStateFailed, Assertion, Teardown, Exit, Agent), Exit},
		{"a crash beats everything", spec(types.SpecStateFailed, Exit, Crash, Infra), Crash},
		{"unknown classes are ignored", spec(types.SpecStateFailed, Class("bogus")), Assertion},
		{"timed out", spec(types.SpecStateTimedout), Timeout},
		{"interrupted", spec(types.SpecStateInterrupted), Timeout},
		{"timed out after a crash", spec(types.SpecStateTimedout, Crash), Crash},
		{"infra", spec(types.SpecStateFailed, Infra), Infra},
	} {
		if got := Of(tc.r); got != tc.want {
			t.Errorf("%s: Of = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestNeverFlake(t *testing.T) {
	for c, want := range map[Class]bool{Crash: true, Exit: true, Teardown: true, Agent: false, Timeout: false, Assertion: false, Infra: false, None: false} {
		if c.NeverFlake() != want {
			t.Errorf("%q.NeverFlake() = %v", c, !want)
		}
	}
}
