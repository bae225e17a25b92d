package coverage

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"

	"github.com/scxcheck/scxcheck/coverage/diff"
	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// Lines are line numbers by file path (relative to the tree), each file's
// in increasing order without repeats.
type Lines map[string][]int

// Add adds lines of a file.
func (l Lines) Add(file string, lines ...int) {
	all := append(l[file], lines...)
	sort.Ints(all)
	out := all[:0]
	for i, n := range all {
		if i == 0 || n != all[i-1] {
			out = append(out, n)
		}
	}
	l[file] = out
}

// Files returns the paths, sorted.
func (l Lines) Files() []string {
	out := make([]string, 0, len(l))
	for f, lines := range l {
		if len(lines) > 0 {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// Len returns how many lines there are in all files.
func (l Lines) Len() int {
	n := 0
	for _, lines := range l {
		n += len(lines)
	}
	return n
}

// Contains reports whether the line is in the set.
func (l Lines) Contains(file string, line int) bool {
	lines := l[file]
	i := sort.SearchInts(lines, line)
	return i < len(lines) && lines[i] == line
}

// Executable returns the lines that gcov instruments: the executable ones.
// A changed line that is not executable is a comment, a declaration, a
// brace, or code in a file the coverage does not cover (a BPF program, a
// header of a struct).
func (l Lines) Executable(cov *gcov.Coverage) Lines {
	out := Lines{}
	for f, lines := range l {
		for _, n := range lines {
			if cov.Instrumented(f, n) {
				out[f] = append(out[f], n)
			}
		}
	}
	return out
}

// Changes are the hunks of one or more patches and where their added lines
// are in a tree.
type Changes struct {
	Hunks []*Hunk
}

// Hunk is one hunk of a patch and where its added lines are.
type Hunk struct {
	// Patch names the patch: its subject, or the file it came from.
	Patch string `json:"patch"`
	// Path is the file the patch changes (its path after the patch).
	Path string `json:"path"`
	// Header is the hunk's "@@ -a,b +c,d @@" line.
	Header string `json:"header"`
	// File is where the added lines are in the tree: Path, or the file
	// the code has moved to since; "" when the hunk was not located.
	File   string `json:"file,omitempty"`
	Status Status `json:"status"`
	// Confidence is between 0 and 1: the share of the added lines (each
	// weighted by how telling its text is, a brace counting little) found
	// where the hunk was located, halved when another place matches
	// almost as well.
	Confidence float64 `json:"confidence"`
	Added      []Added `json:"added"`
	// Note says what was unusual: a second candidate place, the file
	// the hunk moved to, lines changed by a later patch.
	Note string `json:"note,omitempty"`
}

// Added is one line a hunk adds.
type Added struct {
	// Text is the line as the patch has it.
	Text string `json:"text"`
	// Line is its line number in the hunk's File, 0 when not found.
	Line  int   `json:"line,omitempty"`
	Match Match `json:"match"`
}

// Status says whether and how a hunk's added lines were found.
type Status string

// The statuses of a hunk.
const (
	// Exact: every added line is where expected, unchanged.
	Exact Status = "exact"
	// Fuzzy: most of the added lines were found (by weight), some
	// changed or missing, or the hunk moved to another file.
	Fuzzy Status = "fuzzy"
	// NotLocated: the added lines were not found; none is counted.
	NotLocated Status = "not located"
	// RemovesOnly: the hunk adds no line; there is nothing to find.
	RemovesOnly Status = "removes only"
)

// Match says how one added line was found.
type Match string

// The matches of an added line.
const (
	// Same: the line is in the tree as the patch adds it (whitespace
	// aside).
	Same Match = "same"
	// Changed: a line in its place differs from the patch's, but is
	// similar enough to be the same line, changed since.
	Changed Match = "changed"
	// Missing: no line in the tree is this one.
	Missing Match = "missing"
)

// Lines returns the found added lines, by file.
func (c *Changes) Lines() Lines {
	out := Lines{}
	for _, h := range c.Hunks {
		for _, a := range h.Added {
			if a.Line > 0 {
				out.Add(h.File, a.Line)
			}
		}
	}
	return out
}

// Stats counts hunks and added lines.
type Stats struct {
	// Hunks counts the hunks that add lines; Located those found (Exact
	// or Fuzzy), Fuzzy those found with some difference, NotLocated those
	// not found. RemovesOnly counts the hunks that add nothing.
	Hunks, Located, Fuzzy, NotLocated, RemovesOnly int
	// Added counts the added lines of all hunks, Found those found in the
	// tree, Changed those found but changed since.
	Added, Found, Changed int
}

// Stats counts the hunks and lines of the changes.
func (c *Changes) Stats() Stats {
	var s Stats
	for _, h := range c.Hunks {
		if h.Status == RemovesOnly {
			s.RemovesOnly++
			continue
		}
		s.Hunks++
		switch h.Status {
		case Exact:
			s.Located++
		case Fuzzy:
			s.Located++
			s.Fuzzy++
		case NotLocated:
			s.NotLocated++
		}
		for _, a := range h.Added {
			s.Added++
			if a.Line > 0 {
				s.Found++
			}
			if a.Match == Changed {
				s.Changed++
			}
		}
	}
	return s
}

// String says in one line what Stats counts.
func (s Stats) String() string {
	return fmt.Sprintf("%d of %d hunks located (%d fuzzy, %d not located), %d of %d added lines found (%d changed since)",
		s.Located, s.Hunks, s.Fuzzy, s.NotLocated, s.Found, s.Added, s.Changed)
}

// FromPatches returns the changes of a series of patches, applied in order,
// with line numbers taken from the hunk headers: where the lines are after
// the last patch, provided the patches applied exactly where they say (as
// `git am` and `patch` without offsets do). Lines a later patch removes
// again are Missing; a hunk whose lines all went is NotLocated.
//
// For patches that applied with offsets or fuzz, or a tree that already
// contained them, use Locate.
func FromPatches(patches ...*diff.Patch) *Changes {
	c := &Changes{}
	for _, p := range patches {
		for _, f := range p.Files {
			c.move(p, f)
			for _, dh := range f.Hunks {
				h := &Hunk{Patch: p.String(), Path: f.Path(), Header: dh.Header(), File: f.NewPath}
				for _, l := range dh.Lines {
					if l.Kind == diff.Added {
						h.Added = append(h.Added, Added{Text: l.Text, Line: l.New, Match: Same})
					}
				}
				c.Hunks = append(c.Hunks, h)
			}
		}
	}
	for _, h := range c.Hunks {
		h.settle()
	}
	return c
}

// Then moves the lines of c through patches applied, in order, on top of
// the tree c describes, as FromPatches does within its series: each line
// is then where it is after those patches, and one a patch removes is
// Missing. The patches' own hunks are not added: they are not the change
// under test (scxcheck's test-only patch applied after the user's, for
// instance).
func (c *Changes) Then(patches ...*diff.Patch) {
	lost := map[*Hunk]bool{}
	for _, p := range patches {
		for _, f := range p.Files {
			for _, h := range c.move(p, f) {
				lost[h] = true
			}
		}
	}
	for _, h := range c.Hunks {
		if lost[h] {
			h.settle()
		}
	}
}

// move moves the lines of c's hunks in the file f of patch p changes to
// where they are after it, and returns the hunks of which it removed lines.
func (c *Changes) move(p *diff.Patch, f *diff.File) []*Hunk {
	var lost []*Hunk
	for _, h := range c.Hunks {
		if h.File == "" || h.File != f.OldPath {
			continue
		}
		for i := range h.Added {
			a := &h.Added[i]
			if a.Line == 0 {
				continue
			}
			if n, ok := f.MapLine(a.Line); ok {
				a.Line = n
			} else {
				a.Line, a.Match = 0, Missing
				h.Note = fmt.Sprintf("lines changed again by %s", p)
				if len(lost) == 0 || lost[len(lost)-1] != h {
					lost = append(lost, h)
				}
			}
		}
		h.File = f.NewPath
	}
	return lost
}

// settle sets a header-placed hunk's status from its lines.
func (h *Hunk) settle() {
	found := 0
	for _, a := range h.Added {
		if a.Line > 0 {
			found++
		}
	}
	switch {
	case len(h.Added) == 0:
		h.Status, h.Confidence = RemovesOnly, 1
	case found == len(h.Added):
		h.Status, h.Confidence = Exact, 1
	case found == 0:
		h.Status, h.Confidence, h.File = NotLocated, 0, ""
	default:
		h.Status, h.Confidence = Fuzzy, float64(found)/float64(len(h.Added))
	}
}

// FromGit returns the changes between two revisions of a git tree (`git
// diff base head`, renames followed): what the commits base..head add, at
// their line numbers in head. head "" means the work tree.
func FromGit(ctx context.Context, tree, base, head string) (*Changes, error) {
	args := []string{"-C", tree, "-c", "core.quotePath=false", "diff", "--no-color", "--no-ext-diff",
		"--unified=0", "--find-renames", "--src-prefix=a/", "--dst-prefix=b/", base}
	name := base + ".."
	if head != "" {
		args = append(args, head)
		name += head
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("git diff %s in %s: %w: %s", name, tree, err, strings.TrimSpace(stderr.String()))
	}
	patches, err := diff.Parse(name, stdout.String())
	if err != nil {
		return nil, fmt.Errorf("git diff %s in %s: %w", name, tree, err)
	}
	return FromPatches(patches...), nil
}
