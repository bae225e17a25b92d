package coverage

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// Report is the coverage of a patch's changed lines: which of them are
// executable, which ran, and which runs (specs) ran each.
type Report struct {
	// Changes are the patch's hunks and where their lines are.
	Changes *Changes
	// Files are the changed files, by path.
	Files []*FileReport
	// Executable counts the changed lines that gcov instruments, Executed
	// those of them that ran.
	Executable, Executed int
	// Runs are the names of the runs the coverage came from.
	Runs []string
}

// FileReport is the coverage of one changed file.
type FileReport struct {
	Path string `json:"path"`
	// Instrumented is false when the coverage has no line of the file (a
	// BPF program, a file outside the instrumented objects).
	Instrumented bool `json:"instrumented"`
	Executable   int  `json:"executable"`
	Executed     int  `json:"executed"`
	// Lines are the changed lines, in order.
	Lines []LineReport `json:"lines"`
	// source is the file's text; cov its coverage (nil when none).
	source []string
	cov    *gcov.File
}

// LineReport is one changed line.
type LineReport struct {
	Line int `json:"line"`
	// Text is the line in the tree.
	Text       string `json:"text"`
	Executable bool   `json:"executable"`
	Count      uint64 `json:"count"`
	// Runs are the runs that executed the line.
	Runs []string `json:"specs,omitempty"`
}

// NewReport measures changes against coverage: the tree is the source the
// covered kernel was built from (the post-patch tree), and the coverage's
// paths are relative to it (see gcov.Merged.Relative).
func NewReport(tree fs.FS, changes *Changes, cov *gcov.Merged) (*Report, error) {
	r := &Report{Changes: changes, Runs: cov.Runs()}
	total := cov.Total()
	lines := changes.Lines()
	for _, path := range lines.Files() {
		data, err := fs.ReadFile(tree, path)
		if err != nil {
			return nil, fmt.Errorf("coverage report: %w", err)
		}
		fr := &FileReport{Path: path, source: strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n"), "\n"), cov: total.Files[path]}
		fr.Instrumented = fr.cov != nil && len(fr.cov.Lines) > 0
		for _, n := range lines[path] {
			lr := LineReport{Line: n, Text: fr.text(n)}
			if l, ok := total.Line(path, n); ok {
				lr.Executable, lr.Count = true, l.Count
				lr.Runs = cov.ExecutedBy(path, n)
				fr.Executable++
				if l.Count > 0 {
					fr.Executed++
				}
			}
			fr.Lines = append(fr.Lines, lr)
		}
		r.Executable += fr.Executable
		r.Executed += fr.Executed
		r.Files = append(r.Files, fr)
	}
	return r, nil
}

func (f *FileReport) text(n int) string {
	if n < 1 || n > len(f.source) {
		return ""
	}
	return f.source[n-1]
}

// count returns the count of line n and whether it is instrumented.
func (f *FileReport) count(n int) (uint64, bool) {
	if f.cov == nil {
		return 0, false
	}
	l := f.cov.Lines[n]
	if l == nil {
		return 0, false
	}
	return l.Count, true
}

// Ratio returns the share of the executable changed lines that ran, 0 when
// none is executable.
func (r *Report) Ratio() float64 {
	if r.Executable == 0 {
		return 0
	}
	return float64(r.Executed) / float64(r.Executable)
}

// Summary says the result in one line, for the end of a run.
func (r *Report) Summary() string {
	s := fmt.Sprintf("changed lines: %d of %d executable executed", r.Executed, r.Executable)
	if r.Executable > 0 {
		s += fmt.Sprintf(" (%.1f%%)", 100*r.Ratio())
	}
	st := r.Changes.Stats()
	s += fmt.Sprintf("; %d of %d added lines found in the tree", st.Found, st.Added)
	if st.NotLocated > 0 {
		s += fmt.Sprintf(", %d of %d hunks not located", st.NotLocated, st.Hunks)
	}
	return s
}

// Range is a run of changed executable lines of a file that did not run,
// with the lines between them (which are not executable).
type Range struct {
	File  string `json:"file"`
	Start int    `json:"start"`
	End   int    `json:"end"`
	// Missed counts the executable lines in the range that did not run.
	Missed int `json:"missed"`
}

// rangeGap is how far apart two missed lines may be, with nothing
// executable between them, and still be one range.
const rangeGap = 10

// Missed returns the changed executable lines that did not run, in ranges:
// lines with nothing executable between them and at most a few lines apart
// form one range.
func (r *Report) Missed() []Range {
	var out []Range
	for _, f := range r.Files {
		var cur *Range
		for _, l := range f.Lines {
			if !l.Executable || l.Count > 0 {
				continue
			}
			if cur != nil && l.Line-cur.End <= rangeGap && !f.executableBetween(cur.End, l.Line) {
				cur.End = l.Line
				cur.Missed++
				continue
			}
			out = append(out, Range{File: f.Path, Start: l.Line, End: l.Line, Missed: 1})
			cur = &out[len(out)-1]
		}
	}
	return out
}

// executableBetween reports whether a line strictly between a and b is
// instrumented.
func (f *FileReport) executableBetween(a, b int) bool {
	for n := a + 1; n < b; n++ {
		if _, ok := f.count(n); ok {
			return true
		}
	}
	return false
}

// file returns the report of a file, nil if it is not a changed file.
func (r *Report) file(path string) *FileReport {
	for _, f := range r.Files {
		if f.Path == path {
			return f
		}
	}
	return nil
}

// executedGroup is a run of executed changed lines of a file that the same
// runs executed.
type executedGroup struct {
	file       string
	start, end int
	lines      int
	runs       []string
}

func (r *Report) executedGroups() []executedGroup {
	var out []executedGroup
	for _, f := range r.Files {
		var cur *executedGroup
		for _, l := range f.Lines {
			if !l.Executable || l.Count == 0 {
				continue
			}
			if cur != nil && equal(cur.runs, l.Runs) && !f.executableBetweenExcept(cur.end, l.Line) {
				cur.end = l.Line
				cur.lines++
				continue
			}
			out = append(out, executedGroup{file: f.Path, start: l.Line, end: l.Line, lines: 1, runs: l.Runs})
			cur = &out[len(out)-1]
		}
	}
	return out
}

// executableBetweenExcept reports whether a line strictly between a and b
// is instrumented and not changed: a line that breaks a group.
func (f *FileReport) executableBetweenExcept(a, b int) bool {
	changed := map[int]bool{}
	for _, l := range f.Lines {
		changed[l.Line] = true
	}
	for n := a + 1; n < b; n++ {
		if _, ok := f.count(n); ok && !changed[n] {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// WriteText writes the report for people (summary.txt): the totals, per
// file, the lines that did not run with their source, the runs that ran
// the others, and the hunks that were not found or differ.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	st := r.Changes.Stats()
	ew.printf("Changed-line coverage: %d of %d executable changed lines executed", r.Executed, r.Executable)
	if r.Executable > 0 {
		ew.printf(" (%.1f%%)", 100*r.Ratio())
	}
	ew.printf(".\n")
	ew.printf("Patch: %s.\n", st)
	ew.printf("Runs: %d.\n", len(r.Runs))

	if len(r.Files) > 0 {
		ew.printf("\nFiles (executed/executable of the changed lines):\n")
		width := 0
		for _, f := range r.Files {
			width = max(width, len(f.Path))
		}
		for _, f := range r.Files {
			switch {
			case !f.Instrumented:
				ew.printf("  %-*s  %d changed lines, none instrumented\n", width, f.Path, len(f.Lines))
			case f.Executable == 0:
				ew.printf("  %-*s  %d changed lines, none executable\n", width, f.Path, len(f.Lines))
			default:
				ew.printf("  %-*s  %d/%d (%.1f%%)\n", width, f.Path, f.Executed, f.Executable, 100*float64(f.Executed)/float64(f.Executable))
			}
		}
	}

	missed := r.Missed()
	if len(missed) > 0 {
		n := 0
		for _, m := range missed {
			n += m.Missed
		}
		ew.printf("\nNot executed (%d lines in %d ranges):\n", n, len(missed))
		for _, m := range missed {
			f := r.file(m.File)
			ew.printf("  %s\n", m)
			for line := m.Start; line <= m.End; line++ {
				mark := " "
				if c, ok := f.count(line); ok && c == 0 {
					mark = "!"
				}
				ew.printf("    %s %6d | %s\n", mark, line, f.text(line))
			}
		}
	}

	if groups := r.executedGroups(); len(groups) > 0 {
		ew.printf("\nExecuted, and by which runs:\n")
		for _, g := range groups {
			where := fmt.Sprintf("%s:%d", g.file, g.start)
			if g.end != g.start {
				where += fmt.Sprintf("-%d", g.end)
			}
			ew.printf("  %s (%d lines): %s\n", where, g.lines, r.describeRuns(g.runs))
		}
	}

	var notLocated, fuzzy []*Hunk
	for _, h := range r.Changes.Hunks {
		switch h.Status {
		case NotLocated:
			notLocated = append(notLocated, h)
		case Fuzzy:
			fuzzy = append(fuzzy, h)
		}
	}
	if len(notLocated) > 0 {
		ew.printf("\nHunks not located in the tree (their lines are not counted):\n")
		for _, h := range notLocated {
			ew.printf("  %s %s (%d added lines)", h.Path, h.Header, len(h.Added))
			if h.Note != "" {
				ew.printf(": %s", h.Note)
			}
			ew.printf("\n")
		}
	}
	if len(fuzzy) > 0 {
		ew.printf("\nHunks located with differences:\n")
		for _, h := range fuzzy {
			found, changed := 0, 0
			for _, a := range h.Added {
				if a.Line > 0 {
					found++
				}
				if a.Match == Changed {
					changed++
				}
			}
			ew.printf("  %s %s: %d of %d added lines found in %s (%d changed since), confidence %.2f",
				h.Path, h.Header, found, len(h.Added), h.File, changed, h.Confidence)
			if h.Note != "" {
				ew.printf("; %s", h.Note)
			}
			ew.printf("\n")
		}
	}
	return ew.err
}

// maxListed is how many runs the text report names for a group of lines,
// or names as those that did not execute it; more are counted, and listed
// in changed-lines.json.
const maxListed = 6

// describeRuns says which runs executed a group of lines: their names when
// a few did; when most did, how many and, one a line, those that did not.
func (r *Report) describeRuns(runs []string) string {
	if len(runs) <= maxListed {
		return strings.Join(runs, ", ")
	}
	s := fmt.Sprintf("%d of %d runs", len(runs), len(r.Runs))
	var not []string
	for _, name := range r.Runs {
		if !slices.Contains(runs, name) {
			not = append(not, name)
		}
	}
	switch {
	case len(not) == 0:
		return s + ", all"
	case len(not) > maxListed:
		return s + " (named in changed-lines.json)"
	}
	s += "; all but:"
	for _, name := range not {
		s += "\n      - " + name
	}
	return s
}

// String returns "file:start-end".
func (m Range) String() string {
	if m.Start == m.End {
		return fmt.Sprintf("%s:%d", m.File, m.Start)
	}
	return fmt.Sprintf("%s:%d-%d", m.File, m.Start, m.End)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// jsonReport is the document of WriteJSON.
type jsonReport struct {
	Summary struct {
		Executed        int      `json:"executed"`
		Executable      int      `json:"executable"`
		Ratio           float64  `json:"ratio"`
		AddedLines      int      `json:"added_lines"`
		FoundLines      int      `json:"found_lines"`
		ChangedSince    int      `json:"changed_since"`
		Hunks           int      `json:"hunks"`
		HunksLocated    int      `json:"hunks_located"`
		HunksFuzzy      int      `json:"hunks_fuzzy"`
		HunksNotLocated int      `json:"hunks_not_located"`
		Specs           []string `json:"specs"`
		Line            string   `json:"line"`
	} `json:"summary"`
	Files  []*FileReport `json:"files"`
	Missed []Range       `json:"missed"`
	Hunks  []*Hunk       `json:"hunks"`
}

// WriteJSON writes the report for machines (changed-lines.json): the
// summary, every changed line with its count and runs, the missed ranges
// and the hunks with where their lines were found.
func (r *Report) WriteJSON(w io.Writer) error {
	var doc jsonReport
	st := r.Changes.Stats()
	s := &doc.Summary
	s.Executed, s.Executable, s.Ratio = r.Executed, r.Executable, r.Ratio()
	s.AddedLines, s.FoundLines, s.ChangedSince = st.Added, st.Found, st.Changed
	s.Hunks, s.HunksLocated, s.HunksFuzzy, s.HunksNotLocated = st.Hunks, st.Located, st.Fuzzy, st.NotLocated
	s.Specs = append([]string{}, r.Runs...)
	s.Line = r.Summary()
	doc.Files = append([]*FileReport{}, r.Files...)
	doc.Missed = append([]Range{}, r.Missed()...)
	doc.Hunks = append([]*Hunk{}, r.Changes.Hunks...)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write changed-lines json: %w", err)
	}
	return nil
}

// WriteDir writes the report's files into dir: summary.txt,
// changed-lines.json and, per changed file, an annotated page
// files/<path>.html. It returns the paths written, relative to dir.
func (r *Report) WriteDir(dir string) ([]string, error) {
	var written []string
	write := func(name string, fill func(io.Writer) error) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("coverage report: %w", err)
		}
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("coverage report: %w", err)
		}
		if err := fill(f); err != nil {
			f.Close()
			return fmt.Errorf("coverage report %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("coverage report: %w", err)
		}
		written = append(written, name)
		return nil
	}
	if err := write("summary.txt", r.WriteText); err != nil {
		return nil, err
	}
	if err := write("changed-lines.json", r.WriteJSON); err != nil {
		return nil, err
	}
	for _, f := range r.Files {
		if err := write(AnnotatedPath(f.Path), func(w io.Writer) error { return r.WriteAnnotated(w, f.Path) }); err != nil {
			return nil, err
		}
	}
	sort.Strings(written)
	return written, nil
}

// AnnotatedPath returns where WriteDir puts the annotated page of a changed
// file, relative to its directory.
func AnnotatedPath(file string) string {
	return "files/" + file + ".html"
}
