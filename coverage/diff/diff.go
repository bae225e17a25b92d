// Package diff reads patches: unified diffs, git diffs and `git
// format-patch` mailboxes (several messages in one file), as well as patches
// whose whitespace a mail archive or a web page has mangled.
//
// It only reads: which lines each hunk removes, keeps and adds, and where
// they are in the old and new file. Applying patches and finding applied
// hunks in a tree is left to the callers (see package coverage).
package diff

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Patch is one patch: one message of a mailbox, or one plain diff.
type Patch struct {
	// Name says where the patch came from: the file it was read from and,
	// for a message of a mailbox, its number in it ("series.mbox#3").
	Name string
	// Subject is the message's subject, "" for a plain diff.
	Subject string
	// Files are the files the patch changes, in the order it lists them.
	Files []*File
	// Warnings say what Parse found damaged, such as a hunk cut short.
	Warnings []string
}

// String returns the patch's subject, or its name when it has none.
func (p *Patch) String() string {
	if p.Subject != "" {
		return p.Subject
	}
	return p.Name
}

// File is what a patch does to one file.
type File struct {
	// OldPath and NewPath are the file's paths before and after the patch,
	// without git's a/ and b/ prefixes. OldPath is "" for a new file and
	// NewPath is "" for a deleted one.
	OldPath, NewPath string
	// Binary is set for a binary change; it has no hunks.
	Binary bool
	Hunks  []*Hunk
}

// Path returns the file's path after the patch, or before it for a deleted
// file.
func (f *File) Path() string {
	if f.NewPath != "" {
		return f.NewPath
	}
	return f.OldPath
}

// IsNew reports whether the patch creates the file.
func (f *File) IsNew() bool { return f.OldPath == "" && f.NewPath != "" }

// IsDeleted reports whether the patch deletes the file.
func (f *File) IsDeleted() bool { return f.NewPath == "" && f.OldPath != "" }

// IsRenamed reports whether the patch moves the file.
func (f *File) IsRenamed() bool {
	return f.OldPath != "" && f.NewPath != "" && f.OldPath != f.NewPath
}

// Added returns the new-file line numbers of the lines the patch adds to the
// file, in increasing order.
func (f *File) Added() []int {
	var out []int
	for _, h := range f.Hunks {
		for _, l := range h.Lines {
			if l.Kind == Added {
				out = append(out, l.New)
			}
		}
	}
	return out
}

// MapLine returns where line old of the file before the patch is after it.
// ok is false for a line the patch removes (or for any line of a deleted
// or new file). Line numbers are those of the hunk headers: the patch is taken to
// apply exactly where it says.
func (f *File) MapLine(old int) (line int, ok bool) {
	if f.IsDeleted() || f.IsNew() {
		return 0, false
	}
	delta := 0
	for _, h := range f.Hunks {
		// A hunk that adds to an empty range ("-12,0") sits after line 12.
		first := h.OldStart
		if h.OldLines == 0 {
			first++
		}
		if old < first {
			break
		}
		if old >= first+h.OldLines {
			delta += h.NewLines - h.OldLines
			continue
		}
		for _, l := range h.Lines {
			if l.Old == old {
				if l.Kind == Removed {
					return 0, false
				}
				return l.New, true
			}
		}
		return 0, false
	}
	return old + delta, true
}

// Kind is what a hunk does with a line.
type Kind byte

// The kinds of line, as the first character of a unified diff line.
const (
	Context Kind = ' '
	Added   Kind = '+'
	Removed Kind = '-'
)

// Hunk is one "@@ -a,b +c,d @@" section of a file's diff.
type Hunk struct {
	// OldStart, OldLines, NewStart and NewLines are the header's numbers.
	OldStart, OldLines, NewStart, NewLines int
	// Section is the text after the header's second "@@", usually the
	// enclosing function.
	Section string
	Lines   []Line
}

// Header returns the hunk's "@@ ... @@" line.
func (h *Hunk) Header() string {
	s := fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
	if h.Section != "" {
		s += " " + h.Section
	}
	return s
}

// Count returns how many lines of the kind the hunk has.
func (h *Hunk) Count(k Kind) int {
	n := 0
	for _, l := range h.Lines {
		if l.Kind == k {
			n++
		}
	}
	return n
}

// Line is one line of a hunk.
type Line struct {
	Kind Kind
	// Text is the line without its kind character and line ending.
	Text string
	// Old and New are its line numbers in the old and new file, 0 where it
	// has none (a removed line has no New, an added line no Old).
	Old, New int
	// NoNewline is set when "\ No newline at end of file" follows the line.
	NoNewline bool
}

// ReadFile reads the patches in a file: a diff, a patch, or a mailbox of
// several. Messages without a diff (a cover letter) are left out; a file
// with no diff at all is an error.
func ReadFile(path string) ([]*Patch, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read patch: %w", err)
	}
	ps, err := Parse(filepath.Base(path), string(data))
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", path, err)
	}
	out := ps[:0]
	for _, p := range ps {
		if len(p.Files) > 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("patch %s: %w", path, ErrNoDiff)
	}
	return out, nil
}

// ErrNoDiff is returned for a file that holds no diff.
var ErrNoDiff = errors.New("no diff found")

// ReadPaths reads the patches in files and directories, in the order given.
// A directory's files are read in name order (as `git format-patch` numbers
// them), skipping hidden files, subdirectories and files without a diff
// (such as a series file or a cover letter).
func ReadPaths(paths ...string) ([]*Patch, error) {
	var out []*Patch
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read patches: %w", err)
		}
		if !st.IsDir() {
			ps, err := ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read patches: %w", err)
		}
		for _, e := range ents { // ReadDir sorts by name
			if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			ps, err := ReadFile(filepath.Join(p, e.Name()))
			if errors.Is(err, ErrNoDiff) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, ps...)
		}
	}
	return out, nil
}
