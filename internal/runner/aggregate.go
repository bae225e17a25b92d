package runner

import (
	"fmt"
	"github.com/scxcheck/scxcheck/outcome"
	"sort"
	"strings"
)

// Verdict is the outcome of a spec over several runs, or of a whole set of
// runs.
type Verdict string

// Verdicts.
const (
	Pass  Verdict = "pass"
	Fail  Verdict = "fail"
	Flaky Verdict = "flaky" // failed in some runs, not enough to fail (see SpecVerdict)
	Skip  Verdict = "skip"  // skipped in every run that ran it
	Infra Verdict = "infra" // the kernel was not tested
)

// Failure is one failed run of a spec.
type Failure struct {
	Run      int           `json:"run"`
	Class    outcome.Class `json:"class"`
	Message  string        `json:"message"`
	Location string        `json:"location,omitempty"`
}

// SpecStats is one spec over the complete runs.
type SpecStats struct {
	Text     string    `json:"text"`
	Labels   []string  `json:"labels,omitempty"`
	Runs     int       `json:"runs"` // complete runs that ran it
	Passed   int       `json:"passed"`
	Failed   int       `json:"failed"`
	Skipped  int       `json:"skipped"`
	Failures []Failure `json:"failures,omitempty"`
	Verdict  Verdict   `json:"verdict"`
	// SkipReason is the reason of the last skip.
	SkipReason string `json:"skip_reason,omitempty"`
}

// PassRate is passed / (passed + failed); 1 when the spec never ran.
func (s SpecStats) PassRate() float64 {
	if s.Passed+s.Failed == 0 {
		return 1
	}
	return float64(s.Passed) / float64(s.Passed+s.Failed)
}

// Summary is a set of runs turned into per-spec statistics and a verdict.
type Summary struct {
	Runs    []Run       `json:"runs"`
	Specs   []SpecStats `json:"specs"`
	Verdict Verdict     `json:"verdict"`
	// Reason explains the verdict in one line.
	Reason string `json:"reason"`
}

// The verdict rule, for N runs of the same specs against the same kernel:
//
//  1. Only complete runs count (exit 0 or 1 with a report). A run that
//     exited 2 or 3, was killed, or left no report tested nothing.
//  2. A spec fails if any complete run failed it with a crash (kernel fault,
//     QEMU died) or an exit-kind assertion: those are never flakes.
//  3. Otherwise (other assertions, agent failures, timeouts) it fails if it
//     failed in more than half of the complete runs that ran it; if it
//     failed in some but at most half, it is flaky: reported with its pass
//     rate, not failing the gate. A spec the harness failed for an
//     infrastructure reason does not count either way.
//  4. It passes if it passed in every complete run that did not skip it,
//     and is a skip if every one skipped it.
//
// The whole set fails (exit 1) if any spec fails, even when some runs were
// infrastructure failures: a regression seen is a regression. Otherwise it
// is an infrastructure failure (exit 3) if any run was not complete — N runs
// were asked for and fewer tested the kernel — and a pass (exit 0) if not.
// With one run the rule is the plain one: any failure fails.

// SpecVerdict applies rules 2–4 to one spec.
func SpecVerdict(s SpecStats) Verdict {
	for _, f := range s.Failures {
		if f.Class.NeverFlake() {
			return Fail
		}
	}
	ran := s.Passed + s.Failed
	switch {
	case s.Failed > 0 && 2*s.Failed > ran:
		return Fail
	case s.Failed > 0:
		return Flaky
	case s.Passed > 0:
		return Pass
	}
	return Skip
}

// Aggregate turns runs into a Summary.
func Aggregate(runs []Run) Summary {
	sum := Summary{Runs: runs}
	byText := map[string]*SpecStats{}
	complete, incomplete := 0, 0
	var why []string
	for _, r := range runs {
		if !r.Complete() {
			incomplete++
			why = append(why, r.why())
			continue
		}
		complete++
		for _, s := range r.Specs {
			st := byText[s.Text]
			if st == nil {
				st = &SpecStats{Text: s.Text, Labels: s.Labels}
				byText[s.Text] = st
			}
			if s.Class == outcome.Infra {
				continue // the harness failed it, not the kernel
			}
			st.Runs++
			switch {
			case s.Failed():
				st.Failed++
				st.Failures = append(st.Failures, Failure{Run: r.Index, Class: s.Class, Message: s.Failure, Location: s.Location})
			case s.State == "passed":
				st.Passed++
			default:
				st.Skipped++
				st.SkipReason = strings.TrimSpace(s.Failure)
			}
		}
	}
	failed := 0
	for _, st := range byText {
		st.Verdict = SpecVerdict(*st)
		if st.Verdict == Fail {
			failed++
		}
		sum.Specs = append(sum.Specs, *st)
	}
	sort.Slice(sum.Specs, func(i, j int) bool { return sum.Specs[i].Text < sum.Specs[j].Text })
	switch {
	case failed > 0:
		sum.Verdict = Fail
		sum.Reason = fmt.Sprintf("%d spec(s) failed", failed)
		if incomplete > 0 {
			sum.Reason += fmt.Sprintf(" (and %d of %d runs did not complete)", incomplete, len(runs))
		}
	case complete == 0:
		sum.Verdict = Infra
		sum.Reason = "no run tested the kernel: " + strings.Join(why, "; ")
	case incomplete > 0:
		sum.Verdict = Infra
		sum.Reason = fmt.Sprintf("%d of %d runs did not complete: %s", incomplete, len(runs), strings.Join(why, "; "))
	default:
		sum.Verdict = Pass
		sum.Reason = fmt.Sprintf("%d run(s), no spec failed", complete)
		if n := sum.count(Flaky); n > 0 {
			sum.Reason += fmt.Sprintf("; %d flaky", n)
		}
	}
	return sum
}

func (r Run) why() string {
	if r.Err != "" {
		return r.Err
	}
	return fmt.Sprintf("run %d exited %d", r.Index, r.ExitCode)
}

func (s Summary) count(v Verdict) int {
	n := 0
	for _, st := range s.Specs {
		if st.Verdict == v {
			n++
		}
	}
	return n
}

// ExitCode maps the verdict to scxcheck's exit codes: 0 pass, 1 regression,
// 3 infrastructure.
func (s Summary) ExitCode() int {
	switch s.Verdict {
	case Pass:
		return outcome.ExitPass
	case Fail:
		return outcome.ExitFail
	}
	return outcome.ExitInfra
}

// Table is the per-spec pass rates, one line each, failing and flaky
// specs first.
func (s Summary) Table() string {
	order := map[Verdict]int{Fail: 0, Flaky: 1, Pass: 2, Skip: 3}
	specs := append([]SpecStats(nil), s.Specs...)
	sort.SliceStable(specs, func(i, j int) bool { return order[specs[i].Verdict] < order[specs[j].Verdict] })
	var b strings.Builder
	for _, st := range specs {
		ran := st.Passed + st.Failed
		fmt.Fprintf(&b, "%-5s %d/%d passed", st.Verdict, st.Passed, ran)
		if st.Skipped > 0 {
			fmt.Fprintf(&b, ", %d skipped", st.Skipped)
		}
		fmt.Fprintf(&b, "  %s\n", st.Text)
		for _, f := range st.Failures {
			fmt.Fprintf(&b, "        run %d (%s) %s: %s\n", f.Run, f.Class, f.Location, firstLine(f.Message))
		}
	}
	fmt.Fprintf(&b, "verdict: %s: %s\n", s.Verdict, s.Reason)
	return b.String()
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
