package coverage

import (
	"fmt"
	"testing"
)

func TestDescribeRuns(t *testing.T) {
	var all []string
	for i := range 10 {
		all = append(all, fmt.Sprintf("spec %d, with a comma", i))
	}
	r := &Report{Runs: all}
	for _, c := range []struct {
		runs []string
		want string
	}{
		{all[:2], "spec 0, with a comma, spec 1, with a comma"},
		{all, "10 of 10 runs, all"},
		{all[:8], "8 of 10 runs; all but:\n      - spec 8, with a comma\n      - spec 9, with a comma"},
		{all[:7], "7 of 10 runs; all but:\n      - spec 7, with a comma\n      - spec 8, with a comma\n      - spec 9, with a comma"},
	} {
		if got := r.describeRuns(c.runs); got != c.want {
			t.Errorf("%d runs: got\n%s\nwant\n%s", len(c.runs), got, c.want)
		}
	}
	r.Runs = append(all, all...)[:20]
	for i := range r.Runs {
		r.Runs[i] = fmt.Sprint(i)
	}
	if got := r.describeRuns(r.Runs[:7]); got != "7 of 20 runs (named in changed-lines.json)" {
		t.Errorf("7 of 20 runs: %s", got)
	}
}
