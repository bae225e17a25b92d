// Package gcov turns gcc's coverage data into line coverage and writes it
// as an lcov tracefile.
//
// gcc's gcov reads a program's .gcno (written by the compiler) and .gcda
// (written by the program, or by the kernel under /sys/kernel/debug/gcov)
// and, with --json-format, describes every source file the object was built
// from: which lines are instrumented, how often each ran, the functions and
// the branches. Parse reads that JSON (gcc 9 and later: format_version 1 and
// 2), Tool runs gcov on pairs of files, Merged sums several runs and keeps,
// for each line, the names of the runs that executed it, and WriteLCOV
// writes the standard lcov.info that genhtml, Codecov and IDEs read.
//
// gcov must be the one of the gcc that built the object (gcov-12 for gcc
// 12): the data files carry the compiler's version.
package gcov

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Coverage is the line coverage of a set of source files.
type Coverage struct {
	// Files are the sources by path: absolute (or as gcov gave it when it
	// named no directory) until Relative makes them relative to a root.
	Files map[string]*File
}

// File is the coverage of one source file.
type File struct {
	Path string
	// Lines holds the instrumented lines, by line number: a line gcov does
	// not list is not executable code (a comment, a declaration, a line
	// the compiler folded into another).
	Lines map[int]*Line
	// Functions are the file's functions, by name.
	Functions map[string]*Function
}

// Line is one instrumented line.
type Line struct {
	// Count is how many times the line ran.
	Count uint64
	// Branches are the counts of the branches that leave the line, in
	// gcov's order; nil when it has none.
	Branches []uint64
}

// Function is one function of a file.
type Function struct {
	Name               string
	StartLine, EndLine int
	// Count is how many times the function was entered.
	Count uint64
	// Blocks and BlocksExecuted count its basic blocks.
	Blocks, BlocksExecuted int
}

// New returns empty coverage.
func New() *Coverage {
	return &Coverage{Files: map[string]*File{}}
}

// file returns the file with the path, creating it.
func (c *Coverage) file(p string) *File {
	f := c.Files[p]
	if f == nil {
		f = &File{Path: p, Lines: map[int]*Line{}, Functions: map[string]*Function{}}
		c.Files[p] = f
	}
	return f
}

// Paths returns the files' paths, sorted.
func (c *Coverage) Paths() []string {
	out := make([]string, 0, len(c.Files))
	for p := range c.Files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Line returns the coverage of one line; ok is false when the line is not
// instrumented (or the file unknown).
func (c *Coverage) Line(file string, line int) (l Line, ok bool) {
	f := c.Files[file]
	if f == nil {
		return Line{}, false
	}
	p := f.Lines[line]
	if p == nil {
		return Line{}, false
	}
	return *p, true
}

// Instrumented reports whether gcov counts the line: whether it is
// executable code.
func (c *Coverage) Instrumented(file string, line int) bool {
	_, ok := c.Line(file, line)
	return ok
}

// Add adds the counts of other to c: lines, functions and branches are
// summed; what only one of them has is kept.
func (c *Coverage) Add(other *Coverage) {
	for _, of := range other.Files {
		c.file(of.Path).Add(of)
	}
}

// Add adds the counts of other, the same source file, to f.
func (f *File) Add(other *File) {
	for n, ol := range other.Lines {
		l := f.Lines[n]
		if l == nil {
			l = &Line{}
			f.Lines[n] = l
		}
		l.add(ol)
	}
	for name, ofn := range other.Functions {
		fn := f.Functions[name]
		if fn == nil {
			cp := *ofn
			f.Functions[name] = &cp
			continue
		}
		fn.Count += ofn.Count
		fn.BlocksExecuted = max(fn.BlocksExecuted, ofn.BlocksExecuted)
	}
}

func (l *Line) add(o *Line) {
	l.Count += o.Count
	for len(l.Branches) < len(o.Branches) {
		l.Branches = append(l.Branches, 0)
	}
	for i, b := range o.Branches {
		l.Branches[i] += b
	}
}

// Relative makes the paths of the files below root relative to it (as
// "kernel/sched/ext/ext.c"), so that they name the same files as a patch
// does. root is where the sources were when the objects were compiled (the
// kernel tree the build ran in). Files elsewhere (system headers) keep
// their paths; two spellings of one file are merged.
func (c *Coverage) Relative(root string) {
	root = filepath.Clean(root)
	files := c.Files
	c.Files = make(map[string]*File, len(files))
	for p, f := range files {
		if rel, err := filepath.Rel(root, p); err == nil && filepath.IsAbs(p) && !strings.HasPrefix(rel, "..") {
			p = filepath.ToSlash(rel)
		}
		if prev := c.Files[p]; prev != nil {
			prev.Add(f) // two spellings of one file
			continue
		}
		f.Path = p
		c.Files[p] = f
	}
}

// Summary counts a file's lines and functions, as lcov's LF/LH and FNF/FNH.
func (f *File) Summary() (lines, linesHit, functions, functionsHit int) {
	for _, l := range f.Lines {
		lines++
		if l.Count > 0 {
			linesHit++
		}
	}
	for _, fn := range f.Functions {
		functions++
		if fn.Count > 0 {
			functionsHit++
		}
	}
	return
}

// jsonDoc is one document of gcov's JSON intermediate format.
type jsonDoc struct {
	FormatVersion string `json:"format_version"`
	GCCVersion    string `json:"gcc_version"`
	CWD           string `json:"current_working_directory"`
	DataFile      string `json:"data_file"`
	Files         []struct {
		File      string `json:"file"`
		Functions []struct {
			Name           string `json:"name"`
			StartLine      int    `json:"start_line"`
			EndLine        int    `json:"end_line"`
			ExecutionCount int64  `json:"execution_count"`
			Blocks         int    `json:"blocks"`
			BlocksExecuted int    `json:"blocks_executed"`
		} `json:"functions"`
		Lines []struct {
			LineNumber int   `json:"line_number"`
			Count      int64 `json:"count"`
			Branches   []struct {
				Count int64 `json:"count"`
			} `json:"branches"`
		} `json:"lines"`
	} `json:"files"`
}

// ErrFormat is returned for JSON that is not gcov's intermediate format.
var ErrFormat = errors.New("not gcov JSON intermediate format")

// Parse reads gcov's JSON intermediate format: what `gcov --json-format
// --stdout` prints (one document a line, one per data file) or a
// .gcov.json.gz file (gzip is recognised by its magic). Relative source
// paths are made absolute with the document's current_working_directory,
// the directory the object was compiled in. Lines and functions listed more
// than once (functions sharing a line) are summed.
func Parse(r io.Reader) (*Coverage, error) {
	br := bufio.NewReader(r)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gcov json: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	c := New()
	dec := json.NewDecoder(br)
	for n := 0; ; n++ {
		var doc jsonDoc
		err := dec.Decode(&doc)
		if err == io.EOF {
			if n == 0 {
				return nil, fmt.Errorf("gcov json: %w: empty input", ErrFormat)
			}
			return c, nil
		}
		if err != nil {
			return nil, fmt.Errorf("gcov json document %d: %w", n+1, err)
		}
		if doc.FormatVersion == "" || doc.GCCVersion == "" {
			return nil, fmt.Errorf("gcov json document %d: %w: no format_version or gcc_version", n+1, ErrFormat)
		}
		c.addDoc(&doc)
	}
}

func (c *Coverage) addDoc(doc *jsonDoc) {
	for _, jf := range doc.Files {
		p := jf.File
		if !path.IsAbs(p) && doc.CWD != "" {
			p = path.Join(doc.CWD, p)
		}
		f := c.file(path.Clean(p))
		for _, jl := range jf.Lines {
			l := &Line{Count: nonNegative(jl.Count)}
			for _, b := range jl.Branches {
				l.Branches = append(l.Branches, nonNegative(b.Count))
			}
			if prev := f.Lines[jl.LineNumber]; prev != nil {
				prev.add(l)
			} else {
				f.Lines[jl.LineNumber] = l
			}
		}
		for _, jfn := range jf.Functions {
			if prev := f.Functions[jfn.Name]; prev != nil {
				prev.Count += nonNegative(jfn.ExecutionCount)
				continue
			}
			f.Functions[jfn.Name] = &Function{
				Name: jfn.Name, StartLine: jfn.StartLine, EndLine: jfn.EndLine,
				Count:  nonNegative(jfn.ExecutionCount),
				Blocks: jfn.Blocks, BlocksExecuted: jfn.BlocksExecuted,
			}
		}
	}
}

func nonNegative(n int64) uint64 {
	if n < 0 {
		return 0
	}
	return uint64(n)
}
