package mutate

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"sort"

	"github.com/scxcheck/scxcheck/coverage"
)

// Line is a changed line of a patch and the specs that executed it, as
// the coverage report has it.
type Line struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Text string `json:"text"`
	// Executable is false for a line gcov does not instrument: a comment,
	// a declaration, a brace.
	Executable bool     `json:"executable"`
	Specs      []string `json:"specs,omitempty"`
}

// String returns "file:line".
func (l Line) String() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// LinesOf returns the changed lines of a coverage report.
func LinesOf(r *coverage.Report) []Line {
	var out []Line
	for _, f := range r.Files {
		out = append(out, fileLines(f)...)
	}
	return out
}

func fileLines(f *coverage.FileReport) []Line {
	var out []Line
	for _, l := range f.Lines {
		specs := l.Runs
		if l.Count == 0 {
			specs = nil
		}
		out = append(out, Line{File: f.Path, Line: l.Line, Text: l.Text, Executable: l.Executable, Specs: specs})
	}
	return out
}

// ReadChangedLines reads the changed lines from a coverage report's
// changed-lines.json (coverage.Report.WriteJSON).
func ReadChangedLines(path string) ([]Line, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("changed lines: %w", err)
	}
	var doc struct {
		Files []*coverage.FileReport `json:"files"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("changed lines: %s: %w", path, err)
	}
	var out []Line
	for _, f := range doc.Files {
		out = append(out, fileLines(f)...)
	}
	return out, nil
}

// SelectOptions narrow the mutants Select keeps.
type SelectOptions struct {
	// Max is how many mutants to keep at most (0 = all): one per line
	// first, lines in an order fixed by their names, so that a small
	// number spreads over the patch; then a second per line, and so on.
	Max int
	// Filter keeps only the mutants whose ID matches (nil = all).
	Filter *regexp.Regexp
	// Failing are specs that failed on the kernel without a mutant, with
	// why: they cannot tell a mutant apart, and are not run.
	Failing map[string]string
}

// Selection is what Select chose, and why the rest was left out.
type Selection struct {
	// Mutants are the mutants to run, each with the specs that executed
	// its line, in the order they run: one per line first, lines in an
	// order fixed by a hash of their names, then a second per line, and
	// so on, so that a run the budget cuts short has spread over the
	// patch.
	Mutants []Mutant `json:"mutants"`
	// NotExecuted are the executable changed lines no spec executed: no
	// spec can kill a mutant there.
	NotExecuted []Line `json:"not_executed,omitempty"`
	// OnlyFailing are executed lines whose specs all failed without a
	// mutant.
	OnlyFailing []Line `json:"only_failing,omitempty"`
	// NoMutant are executed lines no operator applies to (a declaration
	// with an initializer, a goto, a break).
	NoMutant []Line `json:"no_mutant,omitempty"`
	// Generated counts the mutants of the executed lines before Max and
	// Filter; Filtered those Filter left out, Capped those Max left out.
	Generated, Filtered, Capped int `json:"-"`
	// Failing are the specs left out for failing without a mutant.
	Failing map[string]string `json:"failing,omitempty"`
	// Unreadable are the files no mutant could be made of, with why (a
	// file the tokenizer rejects); their lines are in NoMutant.
	Unreadable map[string]string `json:"unreadable,omitempty"`
}

// Select generates the mutants of the changed lines that some spec
// executed, reading each file from src (the sources the covered kernel
// was built from, paths relative to the tree), and gives each mutant the
// specs that executed its line.
func Select(src fs.FS, lines []Line, o SelectOptions) (*Selection, error) {
	sel := &Selection{Failing: o.Failing}
	byFile := map[string][]Line{}
	var files []string
	for _, l := range lines {
		if !l.Executable {
			continue
		}
		if len(l.Specs) == 0 {
			sel.NotExecuted = append(sel.NotExecuted, l)
			continue
		}
		var specs []string
		for _, s := range l.Specs {
			if _, bad := o.Failing[s]; !bad {
				specs = append(specs, s)
			}
		}
		if len(specs) == 0 {
			sel.OnlyFailing = append(sel.OnlyFailing, l)
			continue
		}
		l.Specs = specs
		if byFile[l.File] == nil {
			files = append(files, l.File)
		}
		byFile[l.File] = append(byFile[l.File], l)
	}
	sort.Strings(files)
	perLine := map[string][]Mutant{}
	var order []string
	for _, f := range files {
		data, err := fs.ReadFile(src, f)
		if err != nil {
			return nil, fmt.Errorf("select mutants: %w", err)
		}
		fl := byFile[f]
		nums := make([]int, len(fl))
		for i, l := range fl {
			nums[i] = l.Line
		}
		ms, err := Generate(f, string(data), nums)
		if err != nil {
			// One file scxcheck cannot read as C does not stop the
			// others: its lines get no mutant, and the report says why.
			if sel.Unreadable == nil {
				sel.Unreadable = map[string]string{}
			}
			sel.Unreadable[f] = err.Error()
			ms = nil
		}
		got := map[int]bool{}
		for _, m := range ms {
			got[m.Line] = true
		}
		for _, l := range fl {
			if !got[l.Line] {
				sel.NoMutant = append(sel.NoMutant, l)
				continue
			}
			key := l.String()
			order = append(order, key)
			for _, m := range ms {
				if m.Line != l.Line {
					continue
				}
				sel.Generated++
				if o.Filter != nil && !o.Filter.MatchString(m.ID) {
					sel.Filtered++
					continue
				}
				m.Specs = l.Specs
				perLine[key] = append(perLine[key], m)
			}
		}
	}
	// Round robin over the lines, in an order fixed by a hash of their
	// names: the first Max mutants spread over the patch.
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return string(h[:]) }
	sort.SliceStable(order, func(i, j int) bool { return hash(order[i]) < hash(order[j]) })
	var picked []Mutant
	for round := 0; ; round++ {
		more := false
		for _, key := range order {
			if round < len(perLine[key]) {
				more = true
				if o.Max <= 0 || len(picked) < o.Max {
					picked = append(picked, perLine[key][round])
				} else {
					sel.Capped++
				}
			}
		}
		if !more {
			break
		}
	}
	sel.Mutants = picked
	return sel, nil
}
