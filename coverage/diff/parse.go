package diff

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Parse reads the patches in text, which came from name (used in the
// patches' names and in errors). text may be a plain unified diff, a git
// diff, one `git format-patch` message or a mailbox of several; each message
// (a "From " separator line or a new "Subject:" header) starts a new Patch.
//
// Parse is lenient where mail archives are known to damage patches: a line
// inside a hunk that does not start with ' ', '+' or '-' is taken as a
// context line that lost its leading space, and the hunk header's counts,
// not the text around, decide where a hunk ends. A hunk cut short is kept and
// noted in the patch's Warnings. Text with no diff at all is not an error: it
// gives patches without files.
func Parse(name, text string) ([]*Patch, error) {
	p := &parser{name: name, lines: strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")}
	if err := p.run(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p.done, nil
}

type parser struct {
	name  string
	lines []string
	i     int
	done  []*Patch
	cur   *Patch
	file  *File
	// git is set while reading a file introduced by "diff --git": its paths
	// carry a/ and b/ prefixes.
	git bool
}

var (
	hunkHeader = regexp.MustCompile(`^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$`)
	gitVersion = regexp.MustCompile(`^\d+(\.\d+)+`)
)

func (p *parser) patch() *Patch {
	if p.cur == nil {
		p.cur = &Patch{Name: p.name}
		p.done = append(p.done, p.cur)
	}
	return p.cur
}

// message starts a new patch unless the current one is still empty.
func (p *parser) message() {
	if p.cur != nil && (p.cur.Subject != "" || len(p.cur.Files) > 0) {
		p.cur = nil
	}
	p.file = nil
	p.patch()
}

func (p *parser) run() error {
	for p.i < len(p.lines) {
		line := p.lines[p.i]
		switch {
		case isMboxSeparator(line) && (p.i == 0 || p.lines[p.i-1] == ""):
			p.message()
			p.i++
		case strings.HasPrefix(line, "Subject: "):
			p.message()
			subj := strings.TrimPrefix(line, "Subject: ")
			p.i++
			for p.i < len(p.lines) && strings.HasPrefix(p.lines[p.i], " ") && strings.TrimSpace(p.lines[p.i]) != "" {
				subj += p.lines[p.i]
				p.i++
			}
			p.cur.Subject = strings.TrimSpace(subj)
		case strings.HasPrefix(line, "diff --git "):
			p.gitHeader(line)
		case strings.HasPrefix(line, "--- ") && p.i+1 < len(p.lines) && strings.HasPrefix(p.lines[p.i+1], "+++ "):
			p.fileHeader()
		case strings.HasPrefix(line, "@@ ") && p.file != nil:
			if err := p.hunk(); err != nil {
				return err
			}
		default:
			p.i++
		}
	}
	// The messages of a mailbox are numbered.
	if len(p.done) > 1 {
		for i, pt := range p.done {
			pt.Name = fmt.Sprintf("%s#%d", p.name, i+1)
		}
	}
	return nil
}

// isMboxSeparator reports whether line is an mbox "From " line, as `git
// format-patch` writes them: "From <40 hex digits> Mon Sep 17 00:00:00 2001".
func isMboxSeparator(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 3 && f[0] == "From" && (len(f[1]) == 40 && isHex(f[1]) || strings.Contains(f[1], "@"))
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// isSignature reports whether lines start with the "-- " line and version
// that end a `git format-patch` message ("--" where an archive trimmed it).
func isSignature(lines []string) bool {
	if lines[0] != "-- " && lines[0] != "--" {
		return false
	}
	return len(lines) == 1 || gitVersion.MatchString(lines[1])
}

func (p *parser) newFile() *File {
	f := &File{}
	pt := p.patch()
	pt.Files = append(pt.Files, f)
	p.file = f
	return f
}

// gitHeader reads "diff --git a/x b/y" and the extended header lines after
// it, up to the "---" line or the first hunk.
func (p *parser) gitHeader(line string) {
	f := p.newFile()
	p.git = true
	f.OldPath, f.NewPath = splitGitPaths(strings.TrimPrefix(line, "diff --git "))
	p.i++
	for ; p.i < len(p.lines); p.i++ {
		l := p.lines[p.i]
		switch {
		case strings.HasPrefix(l, "new file mode"):
			f.OldPath = ""
		case strings.HasPrefix(l, "deleted file mode"):
			f.NewPath = ""
		case strings.HasPrefix(l, "rename from "), strings.HasPrefix(l, "copy from "):
			f.OldPath = unquote(l[strings.Index(l, "from ")+5:])
		case strings.HasPrefix(l, "rename to "), strings.HasPrefix(l, "copy to "):
			f.NewPath = unquote(l[strings.Index(l, "to ")+3:])
		case strings.HasPrefix(l, "Binary files "), strings.HasPrefix(l, "GIT binary patch"):
			f.Binary = true
		case strings.HasPrefix(l, "old mode"), strings.HasPrefix(l, "new mode"),
			strings.HasPrefix(l, "similarity index"), strings.HasPrefix(l, "dissimilarity index"),
			strings.HasPrefix(l, "index "):
		case strings.HasPrefix(l, "--- ") && p.i+1 < len(p.lines) && strings.HasPrefix(p.lines[p.i+1], "+++ "):
			p.paths(f)
			return
		default:
			return
		}
	}
}

// fileHeader reads a "---"/"+++" pair that starts a file of a plain diff.
func (p *parser) fileHeader() {
	f := p.newFile()
	p.git = false
	p.paths(f)
}

// paths sets f's paths from the "---"/"+++" lines at p.i and moves past
// them.
func (p *parser) paths(f *File) {
	oldPath := headerPath(strings.TrimPrefix(p.lines[p.i], "--- "))
	newPath := headerPath(strings.TrimPrefix(p.lines[p.i+1], "+++ "))
	p.i += 2
	strip := p.git || (oldPath == "" || strings.HasPrefix(oldPath, "a/")) && (newPath == "" || strings.HasPrefix(newPath, "b/"))
	if strip {
		oldPath = strings.TrimPrefix(oldPath, "a/")
		newPath = strings.TrimPrefix(newPath, "b/")
	}
	f.OldPath, f.NewPath = oldPath, newPath
}

// headerPath returns the path of a "---" or "+++" line: unquoted, without
// the timestamp diff(1) appends after a tab, "" for /dev/null.
func headerPath(s string) string {
	if i := strings.IndexByte(s, '\t'); i >= 0 {
		s = s[:i]
	}
	s = unquote(strings.TrimRight(s, " "))
	if s == "/dev/null" {
		return ""
	}
	return s
}

// splitGitPaths splits the "a/x b/y" of a "diff --git" line. Unquoted paths
// may contain spaces; the split that gives two equal paths is preferred.
func splitGitPaths(s string) (oldPath, newPath string) {
	if strings.HasPrefix(s, `"`) {
		if end := closingQuote(s); end > 0 {
			return strings.TrimPrefix(unquote(s[:end+1]), "a/"), strings.TrimPrefix(unquote(strings.TrimSpace(s[end+1:])), "b/")
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' && strings.HasPrefix(s[i+1:], "b/") && strings.TrimPrefix(s[:i], "a/") == s[i+3:] {
			return s[2:i], s[i+3:]
		}
	}
	if i := strings.Index(s, " b/"); i >= 0 {
		return strings.TrimPrefix(s[:i], "a/"), unquote(s[i+3:])
	}
	return s, s
}

func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// unquote undoes git's C-style quoting of unusual paths.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// hunk reads the hunk whose header is at p.i.
func (p *parser) hunk() error {
	m := hunkHeader.FindStringSubmatch(p.lines[p.i])
	if m == nil {
		p.i++ // "@@ " that is no header: not a hunk
		return nil
	}
	num := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	h := &Hunk{OldStart: num(m[1], 0), OldLines: num(m[2], 1), NewStart: num(m[3], 0), NewLines: num(m[4], 1), Section: m[5]}
	p.file.Hunks = append(p.file.Hunks, h)
	p.i++
	oldLeft, newLeft := h.OldLines, h.NewLines
	oldNo, newNo := h.OldStart, h.NewStart
	for p.i < len(p.lines) && (oldLeft > 0 || newLeft > 0) {
		l := p.lines[p.i]
		var kind Kind
		switch {
		case strings.HasPrefix(l, "@@ "), strings.HasPrefix(l, "diff --git "), isSignature(p.lines[p.i:]):
			kind = 0 // the next hunk or file, or the mail's end: this one was cut short
		case strings.HasPrefix(l, `\`):
			if n := len(h.Lines); n > 0 {
				h.Lines[n-1].NoNewline = true
			}
			p.i++
			continue
		case strings.HasPrefix(l, "+"):
			kind = Added
		case strings.HasPrefix(l, "-"):
			kind = Removed
		case strings.HasPrefix(l, " "):
			kind = Context
		default:
			// A context line whose leading space was lost (mail
			// archives), or an empty line.
			kind, l = Context, " "+l
		}
		if kind == 0 || kind != Added && oldLeft == 0 || kind != Removed && newLeft == 0 {
			break
		}
		line := Line{Kind: kind, Text: l[1:]}
		if kind != Added {
			line.Old = oldNo
			oldNo++
			oldLeft--
		}
		if kind != Removed {
			line.New = newNo
			newNo++
			newLeft--
		}
		h.Lines = append(h.Lines, line)
		p.i++
	}
	if p.i < len(p.lines) && strings.HasPrefix(p.lines[p.i], `\`) {
		if n := len(h.Lines); n > 0 {
			h.Lines[n-1].NoNewline = true
		}
		p.i++
	}
	if oldLeft > 0 || newLeft > 0 {
		pt := p.patch()
		pt.Warnings = append(pt.Warnings, fmt.Sprintf("%s: hunk %q ends %d old and %d new lines early", p.file.Path(), h.Header(), oldLeft, newLeft))
	}
	return nil
}
