package runner

import (
	"fmt"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
)

// WriteJUnit writes the summary as JUnit XML with Ginkgo's reporter: one
// test case per spec, failed when its verdict is fail, its pass rate and
// every failed run in the output.
func (s Summary) WriteJUnit(path, suite string) error {
	rep := types.Report{
		SuitePath:        suite,
		SuiteDescription: fmt.Sprintf("%s (%d runs)", suite, len(s.Runs)),
		SuiteSucceeded:   s.Verdict == Pass,
	}
	var total time.Duration
	for _, r := range s.Runs {
		total += r.Duration
	}
	rep.RunTime = total
	if s.Verdict == Infra {
		rep.SpecialSuiteFailureReasons = []string{s.Reason}
	}
	for _, st := range s.Specs {
		sr := types.SpecReport{
			LeafNodeType:   types.NodeTypeIt,
			LeafNodeText:   st.Text,
			LeafNodeLabels: st.Labels,
			State:          types.SpecStatePassed,
		}
		var out strings.Builder
		fmt.Fprintf(&out, "%s: passed %d of %d runs", st.Verdict, st.Passed, st.Passed+st.Failed)
		if st.Skipped > 0 {
			fmt.Fprintf(&out, ", skipped in %d", st.Skipped)
		}
		out.WriteString("\n")
		for _, f := range st.Failures {
			fmt.Fprintf(&out, "\nrun %d failed (%s) at %s:\n%s\n", f.Run, f.Class, f.Location, f.Message)
		}
		sr.CapturedStdOutErr = out.String()
		switch st.Verdict {
		case Fail:
			sr.State = types.SpecStateFailed
			f := st.Failures[len(st.Failures)-1]
			sr.Failure = types.Failure{
				Message:  fmt.Sprintf("failed in %d of %d runs; run %d: %s", st.Failed, st.Passed+st.Failed, f.Run, f.Message),
				Location: types.CodeLocation{FileName: f.Location},
			}
		case Skip:
			sr.State = types.SpecStateSkipped
			sr.Failure = types.Failure{Message: st.SkipReason}
		}
		rep.SpecReports = append(rep.SpecReports, sr)
	}
	return reporters.GenerateJUnitReport(rep, path)
}
