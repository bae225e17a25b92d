package gcov

import (
	"fmt"
	"sort"
)

// Merged is the coverage of several named runs (scxcheck's specs, each run
// with counters reset before it and collected after it) summed, together
// with which runs executed each line. The zero value is empty and ready to
// use.
type Merged struct {
	total *Coverage
	runs  []run
	// by holds, per file and line, the indexes into runs of those that
	// executed it, in the order they were added.
	by map[string]map[int][]int
}

type run struct {
	name string
	cov  *Coverage
}

// Add adds one run's coverage under a name. A name may be added once; the
// coverage must not change afterwards.
func (m *Merged) Add(name string, c *Coverage) error {
	for _, r := range m.runs {
		if r.name == name {
			return fmt.Errorf("merge coverage: run %q added twice", name)
		}
	}
	if m.total == nil {
		m.total = New()
		m.by = map[string]map[int][]int{}
	}
	idx := len(m.runs)
	m.runs = append(m.runs, run{name, c})
	m.total.Add(c)
	for p, f := range c.Files {
		for n, l := range f.Lines {
			if l.Count == 0 {
				continue
			}
			lines := m.by[p]
			if lines == nil {
				lines = map[int][]int{}
				m.by[p] = lines
			}
			lines[n] = append(lines[n], idx)
		}
	}
	return nil
}

// Total returns the summed coverage of all runs. It must not be changed.
func (m *Merged) Total() *Coverage {
	if m.total == nil {
		return New()
	}
	return m.total
}

// Runs returns the names of the runs, in the order they were added.
func (m *Merged) Runs() []string {
	out := make([]string, len(m.runs))
	for i, r := range m.runs {
		out[i] = r.name
	}
	return out
}

// Run returns the coverage of the named run, nil if there is none.
func (m *Merged) Run(name string) *Coverage {
	for _, r := range m.runs {
		if r.name == name {
			return r.cov
		}
	}
	return nil
}

// ExecutedBy returns the names of the runs that executed the line, in the
// order they were added; nil when none did.
func (m *Merged) ExecutedBy(file string, line int) []string {
	idx := m.by[file][line]
	if len(idx) == 0 {
		return nil
	}
	out := make([]string, len(idx))
	for i, r := range idx {
		out[i] = m.runs[r].name
	}
	return out
}

// Relative makes the paths of every run and of the total relative to root,
// as Coverage.Relative does (the runs' Coverage values change with it).
func (m *Merged) Relative(root string) {
	runs := m.runs
	*m = Merged{}
	for _, r := range runs {
		r.cov.Relative(root)
		m.Add(r.name, r.cov) // names were unique already
	}
}

// Attribution lists, for every executed line of the file, the runs that
// executed it; lines in increasing order.
func (m *Merged) Attribution(file string) []LineRuns {
	var out []LineRuns
	for n := range m.by[file] {
		out = append(out, LineRuns{Line: n, Runs: m.ExecutedBy(file, n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// LineRuns is one line and the runs that executed it.
type LineRuns struct {
	Line int
	Runs []string
}
