package mutate

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of a mutate run.
type Report struct {
	Selection *Selection `json:"-"`
	// Results are the mutants that ran (or were taken from an earlier
	// run), in order.
	Results []Result `json:"results"`
	// NotRun are the selected mutants the run did not reach (budget,
	// interruption, an error).
	NotRun []Mutant `json:"-"`
	// Killed, Survived, Unknown and Stillborn count the results.
	Killed, Survived, Unknown, Stillborn int `json:"-"`
	// Stopped says why the run stopped early ("" when it did not).
	Stopped string `json:"stopped,omitempty"`
	// Err is the error that stopped the run, if any.
	Err     string        `json:"error,omitempty"`
	Elapsed time.Duration `json:"elapsed"`
}

func (r *Report) count() {
	r.Killed, r.Survived, r.Unknown, r.Stillborn = 0, 0, 0, 0
	for _, res := range r.Results {
		switch res.Status {
		case Killed:
			r.Killed++
		case Survived:
			r.Survived++
		case Unknown:
			r.Unknown++
		case Stillborn:
			r.Stillborn++
		}
	}
}

// Scored reports whether the score means anything: some mutant was
// killed or survived.
func (r *Report) Scored() bool { return r.Killed+r.Survived > 0 }

// Score is the mutation score, killed / (killed + survived); 0 when
// nothing was scored.
func (r *Report) Score() float64 {
	if !r.Scored() {
		return 0
	}
	return float64(r.Killed) / float64(r.Killed+r.Survived)
}

// Summary says the outcome in one line.
func (r *Report) Summary() string {
	s := "mutation score: "
	if r.Scored() {
		s += fmt.Sprintf("%.1f%% (%d killed of %d)", 100*r.Score(), r.Killed, r.Killed+r.Survived)
	} else {
		s += "none (no mutant was killed or survived)"
	}
	s += fmt.Sprintf("; %d survived, %d unknown, %d stillborn", r.Survived, r.Unknown, r.Stillborn)
	if len(r.NotRun) > 0 {
		s += fmt.Sprintf(", %d not run", len(r.NotRun))
	}
	if sel := r.Selection; sel != nil && len(sel.NotExecuted) > 0 {
		s += fmt.Sprintf("; %d changed line(s) no spec executes", len(sel.NotExecuted))
	}
	if r.Stopped != "" {
		s += " (stopped: " + r.Stopped + ")"
	}
	return s
}

// averages returns the mean build and test time of the mutants built and
// tested in this run (not taken from the cache or an earlier run).
func (r *Report) averages() (build, test time.Duration, nb, nt int) {
	for _, res := range r.Results {
		if res.Build > 0 && !res.Cached {
			build += res.Build
			nb++
		}
		if res.Test > 0 {
			test += res.Test
			nt++
		}
	}
	if nb > 0 {
		build /= time.Duration(nb)
	}
	if nt > 0 {
		test /= time.Duration(nt)
	}
	return build, test, nb, nt
}

func (r *Report) byStatus(s Status) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == s {
			out = append(out, res)
		}
	}
	sortResults(out)
	return out
}

// WriteText writes the report for people: the score, every survivor with
// its diff and the specs that ran on it, every kill with the spec and
// class that caught it, the unknown and stillborn mutants with why, and
// the changed lines no spec executes.
func (r *Report) WriteText(w io.Writer) error {
	ew := &strings.Builder{}
	fmt.Fprintf(ew, "%s\n", r.Summary())
	if b, t, nb, nt := r.averages(); nb+nt > 0 {
		fmt.Fprintf(ew, "time per mutant: build %s (mean of %d built), test %s (mean of %d tested); whole run %s\n",
			round(b), nb, round(t), nt, round(r.Elapsed))
	}
	if r.Err != "" {
		fmt.Fprintf(ew, "stopped by an error: %s\n", r.Err)
	}
	if sel := r.Selection; sel != nil {
		fmt.Fprintf(ew, "selected %d mutant(s) of %d generated on the executed changed lines", len(sel.Mutants), sel.Generated)
		if sel.Filtered > 0 {
			fmt.Fprintf(ew, ", %d left out by --mutants", sel.Filtered)
		}
		if sel.Capped > 0 {
			fmt.Fprintf(ew, ", %d by --max-mutants", sel.Capped)
		}
		fmt.Fprintf(ew, "\n")
	}
	if s := r.byStatus(Survived); len(s) > 0 {
		fmt.Fprintf(ew, "\nSurvived (no spec noticed; a missing check, or a mutant that changes nothing):\n")
		for _, res := range s {
			fmt.Fprintf(ew, "\n  %s  %s\n", res.Mutant.ID, res.Mutant.Description)
			fmt.Fprintf(ew, "    specs that ran on it (%d), all passed:\n", len(res.Mutant.Specs))
			for _, spec := range res.Mutant.Specs {
				fmt.Fprintf(ew, "      %s\n", spec)
			}
			for _, l := range strings.Split(strings.TrimSuffix(res.Mutant.Diff, "\n"), "\n") {
				fmt.Fprintf(ew, "    %s\n", l)
			}
		}
	}
	if k := r.byStatus(Killed); len(k) > 0 {
		fmt.Fprintf(ew, "\nKilled:\n")
		for _, res := range k {
			fmt.Fprintf(ew, "  %s  %s\n", res.Mutant.ID, res.Mutant.Description)
			for _, kill := range res.Kills {
				fmt.Fprintf(ew, "    by [%s] %s: %s\n", kill.Class, kill.Spec, kill.Message)
			}
		}
	}
	for _, st := range []struct {
		s     Status
		title string
	}{{Unknown, "Unknown (no verdict; not counted)"}, {Stillborn, "Stillborn (did not compile; not counted)"}} {
		if list := r.byStatus(st.s); len(list) > 0 {
			fmt.Fprintf(ew, "\n%s:\n", st.title)
			for _, res := range list {
				fmt.Fprintf(ew, "  %s  %s\n    %s\n", res.Mutant.ID, res.Mutant.Description, res.Reason)
			}
		}
	}
	if len(r.NotRun) > 0 {
		fmt.Fprintf(ew, "\nNot run (%d):\n", len(r.NotRun))
		for _, m := range r.NotRun {
			fmt.Fprintf(ew, "  %s  %s\n", m.ID, m.Description)
		}
	}
	r.writeAnnotated(ew)
	if sel := r.Selection; sel != nil {
		writeLines(ew, "Not executed: no spec can kill a mutant here", sel.NotExecuted)
		writeLines(ew, "Executed only by specs that failed without a mutant", sel.OnlyFailing)
		writeLines(ew, "Executed, but no operator applies", sel.NoMutant)
		writeReasons(ew, "Files no mutant could be made of", sel.Unreadable)
		writeReasons(ew, "Specs that failed without a mutant (not run on mutants)", sel.Failing)
	}
	if _, err := io.WriteString(w, ew.String()); err != nil {
		return fmt.Errorf("write mutate report: %w", err)
	}
	return nil
}

// marks are the annotated view's letters for a mutant's status.
var marks = map[Status]string{Killed: "K", Survived: "S", Unknown: "?", Stillborn: "x"}

// writeAnnotated writes the changed executable lines of each file in
// order, each with a letter per mutant (K killed, S survived, ? unknown,
// x stillborn, . not run) or why it has none.
func (r *Report) writeAnnotated(ew *strings.Builder) {
	sel := r.Selection
	if sel == nil {
		return
	}
	type row struct {
		line  Line
		marks []string
	}
	rows := map[string]map[int]*row{}
	add := func(l Line, mark string) {
		if rows[l.File] == nil {
			rows[l.File] = map[int]*row{}
		}
		rw := rows[l.File][l.Line]
		if rw == nil {
			rw = &row{line: l}
			rows[l.File][l.Line] = rw
		}
		if mark != "" {
			rw.marks = append(rw.marks, mark)
		}
	}
	for _, l := range sel.NotExecuted {
		add(l, "- not executed")
	}
	for _, l := range sel.OnlyFailing {
		add(l, "- only failing specs")
	}
	for _, l := range sel.NoMutant {
		add(l, "- no operator applies")
	}
	for _, res := range r.Results {
		m := res.Mutant
		add(Line{File: m.File, Line: m.Line, Text: m.Text}, marks[res.Status])
	}
	for _, m := range r.NotRun {
		add(Line{File: m.File, Line: m.Line, Text: m.Text}, ".")
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(ew, "\nChanged lines (a mark per mutant: K killed, S survived, ? unknown, x stillborn, . not run):\n")
	files := make([]string, 0, len(rows))
	for f := range rows {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		fmt.Fprintf(ew, "  %s\n", f)
		var nums []int
		for n := range rows[f] {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		for _, n := range nums {
			rw := rows[f][n]
			fmt.Fprintf(ew, "    %6d  %-12s | %s\n", n, strings.Join(rw.marks, " "), strings.TrimSpace(rw.line.Text))
		}
	}
}

// writeReasons writes what a map says of its keys, in their order.
func writeReasons(ew *strings.Builder, title string, why map[string]string) {
	if len(why) == 0 {
		return
	}
	fmt.Fprintf(ew, "\n%s:\n", title)
	keys := make([]string, 0, len(why))
	for k := range why {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(ew, "  %s: %s\n", k, why[k])
	}
}

func writeLines(ew *strings.Builder, title string, lines []Line) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(ew, "\n%s (%d lines):\n", title, len(lines))
	for _, l := range lines {
		fmt.Fprintf(ew, "  %s | %s\n", l, strings.TrimSpace(l.Text))
	}
}

// jsonReport is the document of WriteJSON.
type jsonReport struct {
	Summary struct {
		Score     *float64 `json:"score"` // null when nothing was scored
		Killed    int      `json:"killed"`
		Survived  int      `json:"survived"`
		Unknown   int      `json:"unknown"`
		Stillborn int      `json:"stillborn"`
		NotRun    int      `json:"not_run"`
		Generated int      `json:"generated"`
		Line      string   `json:"line"`
		// Mean wall times per mutant built and tested in this run.
		MeanBuild time.Duration `json:"mean_build_ns"`
		MeanTest  time.Duration `json:"mean_test_ns"`
	} `json:"summary"`
	*Report
	NotRun    []Mutant   `json:"not_run,omitempty"`
	Selection *Selection `json:"selection,omitempty"`
}

// WriteJSON writes the report for machines (report.json): the summary,
// every result with its mutant, diff, specs and kills, the mutants not
// run and the selection (lines not executed, lines without mutants).
func (r *Report) WriteJSON(w io.Writer) error {
	doc := jsonReport{Report: r, NotRun: r.NotRun, Selection: r.Selection}
	s := &doc.Summary
	if r.Scored() {
		score := r.Score()
		s.Score = &score
	}
	s.Killed, s.Survived, s.Unknown, s.Stillborn, s.NotRun = r.Killed, r.Survived, r.Unknown, r.Stillborn, len(r.NotRun)
	if r.Selection != nil {
		s.Generated = r.Selection.Generated
	}
	s.Line = r.Summary()
	s.MeanBuild, s.MeanTest, _, _ = r.averages()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write mutate report: %w", err)
	}
	return nil
}
