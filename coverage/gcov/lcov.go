package gcov

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// LCOV says how to write an lcov tracefile.
type LCOV struct {
	// TestName is the TN: of the records Coverage.WriteLCOV writes;
	// characters other than letters, digits and '_' become '_', as lcov
	// wants. Merged.WriteLCOV names each run's records after the run.
	TestName string
	// SourceRoot, if set, is joined to relative source paths in SF:, so
	// that genhtml, which reads the sources, finds them from anywhere.
	SourceRoot string
}

// WriteLCOV writes c as an lcov tracefile ("lcov.info"): for every file,
// in path order, its functions (FN, FNDA, FNF, FNH), branches (BRDA, BRF,
// BRH) and lines (DA, LF, LH). This is the format of lcov 1.x's geninfo,
// which genhtml, Codecov and IDEs read.
func (c *Coverage) WriteLCOV(w io.Writer, opts LCOV) error {
	bw := bufio.NewWriter(w)
	c.writeLCOV(bw, sanitizeTestName(opts.TestName), opts.SourceRoot)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write lcov: %w", err)
	}
	return nil
}

// WriteLCOV writes every run's coverage as its own records, named (TN:) by
// the run, so that `genhtml --show-details` lists the runs that executed
// each line. opts.TestName is not used.
func (m *Merged) WriteLCOV(w io.Writer, opts LCOV) error {
	bw := bufio.NewWriter(w)
	for _, r := range m.runs {
		r.cov.writeLCOV(bw, sanitizeTestName(r.name), opts.SourceRoot)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write lcov: %w", err)
	}
	return nil
}

func (c *Coverage) writeLCOV(w *bufio.Writer, test, root string) {
	for _, p := range c.Paths() {
		f := c.Files[p]
		sf := p
		if root != "" && !filepath.IsAbs(sf) {
			sf = filepath.Join(root, sf)
		}
		fmt.Fprintf(w, "TN:%s\nSF:%s\n", test, sf)

		fns := make([]*Function, 0, len(f.Functions))
		for _, fn := range f.Functions {
			fns = append(fns, fn)
		}
		sort.Slice(fns, func(i, j int) bool {
			if fns[i].StartLine != fns[j].StartLine {
				return fns[i].StartLine < fns[j].StartLine
			}
			return fns[i].Name < fns[j].Name
		})
		for _, fn := range fns {
			fmt.Fprintf(w, "FN:%d,%s\n", fn.StartLine, fn.Name)
		}
		hit := 0
		for _, fn := range fns {
			fmt.Fprintf(w, "FNDA:%d,%s\n", fn.Count, fn.Name)
			if fn.Count > 0 {
				hit++
			}
		}
		fmt.Fprintf(w, "FNF:%d\nFNH:%d\n", len(fns), hit)

		lines := make([]int, 0, len(f.Lines))
		for n := range f.Lines {
			lines = append(lines, n)
		}
		sort.Ints(lines)
		brf, brh := 0, 0
		for _, n := range lines {
			l := f.Lines[n]
			for i, b := range l.Branches {
				taken := "-" // lcov's mark for a branch whose line never ran
				if l.Count > 0 {
					taken = strconv.FormatUint(b, 10)
				}
				fmt.Fprintf(w, "BRDA:%d,0,%d,%s\n", n, i, taken)
				brf++
				if b > 0 {
					brh++
				}
			}
		}
		if brf > 0 {
			fmt.Fprintf(w, "BRF:%d\nBRH:%d\n", brf, brh)
		}
		lh := 0
		for _, n := range lines {
			fmt.Fprintf(w, "DA:%d,%d\n", n, f.Lines[n].Count)
			if f.Lines[n].Count > 0 {
				lh++
			}
		}
		fmt.Fprintf(w, "LF:%d\nLH:%d\nend_of_record\n", len(lines), lh)
	}
}

func sanitizeTestName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// ParseLCOV reads an lcov tracefile into one Coverage per test name (TN:;
// "" for records without one). Records of the same test and file are
// summed, as lcov does when it merges tracefiles.
func ParseLCOV(r io.Reader) (map[string]*Coverage, error) {
	out := map[string]*Coverage{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	var (
		test string
		cur  *File // the record being read, merged into its test at end_of_record
	)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		key, val, _ := strings.Cut(line, ":")
		bad := func(err error) error { return fmt.Errorf("lcov line %d %q: %w", n, line, err) }
		switch key {
		case "TN":
			test = val
		case "SF":
			cur = New().file(val)
		case "FN", "FNDA", "DA", "BRDA":
			if cur == nil {
				return nil, bad(fmt.Errorf("%s outside a record", key))
			}
			if err := cur.parseLCOVLine(key, val); err != nil {
				return nil, bad(err)
			}
		case "end_of_record":
			if cur == nil {
				return nil, bad(fmt.Errorf("end_of_record outside a record"))
			}
			c := out[test]
			if c == nil {
				c = New()
				out[test] = c
			}
			c.file(cur.Path).Add(cur)
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read lcov: %w", err)
	}
	if cur != nil {
		return nil, fmt.Errorf("read lcov: record of %s has no end_of_record", cur.Path)
	}
	return out, nil
}

func (f *File) parseLCOVLine(key, val string) error {
	parts := strings.Split(val, ",")
	num := func(i int) (uint64, error) {
		if i >= len(parts) {
			return 0, fmt.Errorf("missing field %d", i+1)
		}
		if parts[i] == "-" {
			return 0, nil
		}
		return strconv.ParseUint(parts[i], 10, 64)
	}
	switch key {
	case "FN":
		line, err := num(0)
		if err != nil || len(parts) < 2 {
			return fmt.Errorf("bad FN: %v", err)
		}
		name := strings.Join(parts[1:], ",")
		if f.Functions[name] == nil {
			f.Functions[name] = &Function{Name: name, StartLine: int(line)}
		}
	case "FNDA":
		count, err := num(0)
		if err != nil || len(parts) < 2 {
			return fmt.Errorf("bad FNDA: %v", err)
		}
		name := strings.Join(parts[1:], ",")
		fn := f.Functions[name]
		if fn == nil {
			fn = &Function{Name: name}
			f.Functions[name] = fn
		}
		fn.Count += count
	case "DA":
		line, err1 := num(0)
		count, err2 := num(1)
		if err1 != nil || err2 != nil {
			return fmt.Errorf("bad DA")
		}
		f.line(int(line)).Count += count
	case "BRDA":
		line, err1 := num(0)
		branch, err2 := num(2)
		taken, err3 := num(3)
		if err1 != nil || err2 != nil || err3 != nil || branch > 1<<16 {
			return fmt.Errorf("bad BRDA")
		}
		l := f.line(int(line))
		for uint64(len(l.Branches)) <= branch {
			l.Branches = append(l.Branches, 0)
		}
		l.Branches[branch] += taken
	}
	return nil
}

func (f *File) line(n int) *Line {
	l := f.Lines[n]
	if l == nil {
		l = &Line{}
		f.Lines[n] = l
	}
	return l
}
