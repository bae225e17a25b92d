package kconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Fragment is a config fragment: lines "CONFIG_FOO=y", "CONFIG_BAR=\"x\"" or
// "# CONFIG_BAZ is not set", merged onto a base config as the kernel's
// scripts/kconfig/merge_config.sh does.
type Fragment struct {
	Name string // where it came from, for messages: a path or "kernel/kconfig/fragments/vm.config"
	Data []byte
}

// ReadFragment reads the fragment at path.
func ReadFragment(path string) (Fragment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Fragment{}, fmt.Errorf("read config fragment: %w", err)
	}
	return Fragment{Name: path, Data: data}, nil
}

// Assignment is one symbol set by a fragment.
type Assignment struct {
	Sym   string // without CONFIG_
	Value string // "y", "m", "n" (is not set), or the value as written
	Where string // "file:line"
}

// Line is the .config line that makes the assignment.
func (a Assignment) Line() string {
	if a.Value == "n" {
		return "# CONFIG_" + a.Sym + " is not set"
	}
	return "CONFIG_" + a.Sym + "=" + a.Value
}

func (a Assignment) String() string {
	if a.Value == "n" {
		return "CONFIG_" + a.Sym + " off"
	}
	return "CONFIG_" + a.Sym + "=" + a.Value
}

// Assignments parses the fragment. Lines that are neither assignments nor
// comments are an error, so that a typo does not pass unnoticed.
func (f Fragment) Assignments() ([]Assignment, error) {
	var out []Assignment
	s := bufio.NewScanner(bytes.NewReader(f.Data))
	s.Buffer(nil, 1<<20)
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		where := fmt.Sprintf("%s:%d", f.Name, n)
		if sym, ok := notSet(line); ok {
			out = append(out, Assignment{Sym: sym, Value: "n", Where: where})
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		sym, hasPrefix := strings.CutPrefix(name, "CONFIG_")
		if !ok || !hasPrefix || sym == "" || strings.ContainsAny(sym, " \t") || value == "" {
			return nil, fmt.Errorf("%s: not a config line (want CONFIG_FOO=value or # CONFIG_FOO is not set): %q", where, line)
		}
		out = append(out, Assignment{Sym: sym, Value: value, Where: where})
	}
	return out, s.Err()
}

// notSet recognises "# CONFIG_FOO is not set".
func notSet(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "# CONFIG_")
	if !ok {
		return "", false
	}
	sym, ok := strings.CutSuffix(rest, " is not set")
	if !ok || sym == "" || strings.ContainsAny(sym, " \t") {
		return "", false
	}
	return sym, true
}

// configLineSym returns the symbol a .config line sets (or says is not
// set), "" for other lines.
func configLineSym(line string) string {
	line = strings.TrimSpace(line)
	if sym, ok := notSet(line); ok {
		return sym
	}
	if name, _, ok := strings.Cut(line, "="); ok {
		if sym, ok := strings.CutPrefix(name, "CONFIG_"); ok {
			return sym
		}
	}
	return ""
}

// Merged is the result of merging fragments onto a base config.
type Merged struct {
	Config []byte // the base with every fragment's lines in place of the base's
	// Requests are the symbols the fragments set, the last assignment of
	// each, in the order they first appear.
	Requests []Assignment
	// Overrides are fragment lines that change what an earlier fragment
	// set, e.g. "CONFIG_FOO=m (b.config:3) overrides CONFIG_FOO=y (a.config:7)".
	Overrides []string
}

// Merge merges the fragments onto base as merge_config.sh does: each
// fragment's assignments replace the lines of the same symbols so far, and
// are appended.
func Merge(base []byte, frags []Fragment) (*Merged, error) {
	lines := strings.Split(strings.TrimRight(string(base), "\n"), "\n")
	m := &Merged{}
	last := map[string]int{} // index into m.Requests
	for _, f := range frags {
		as, err := f.Assignments()
		if err != nil {
			return nil, err
		}
		drop := map[string]bool{}
		for _, a := range as {
			drop[a.Sym] = true
		}
		kept := lines[:0:0]
		for _, l := range lines {
			if !drop[configLineSym(l)] {
				kept = append(kept, l)
			}
		}
		lines = kept
		for _, a := range as {
			lines = append(lines, a.Line())
			if i, ok := last[a.Sym]; ok {
				if prev := m.Requests[i]; prev.Value != a.Value {
					m.Overrides = append(m.Overrides, fmt.Sprintf("%s (%s) overrides %s (%s)", a, a.Where, prev, prev.Where))
				}
				m.Requests[i] = a
				continue
			}
			last[a.Sym] = len(m.Requests)
			m.Requests = append(m.Requests, a)
		}
	}
	m.Config = []byte(strings.Join(lines, "\n") + "\n")
	return m, nil
}
