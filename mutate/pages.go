package mutate

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// PagesIndex is the index page WritePages writes into its directory; the
// per-file pages are at coverage.AnnotatedPath(file) beside it, as in a
// coverage report.
const PagesIndex = "index.html"

// notExecuted is what a page says of a changed line no spec executes.
const notExecuted = "not executed: no spec can kill a mutant here"

// pageMutant is one mutant under its line on a file's page.
type pageMutant struct {
	ID, Operator, Description string
	// Status is the mutant's status, or "not-run"; it is the CSS class.
	Status string
	// Outcome says what became of it in a line; Details are its kills
	// (spec, class, message) or, for a survivor, the specs that ran.
	Outcome string
	Details []string
	Diff    []diffLine
}

// diffLine is a line of a mutant's diff, Class "add", "del" or "".
type diffLine struct{ Class, Text string }

// pageLine is a line of a file's page.
type pageLine struct {
	Line int
	Text string
	// Class is the row's look: "survived" (a mutant survived), "killed"
	// (a mutant killed, none survived), "open" (no verdict: unknown,
	// stillborn, not run), "miss" (not executed), "none" (executed, no
	// mutant), "changed" (changed, not executable), "" (context).
	Class   string
	Mark    string
	Note    string
	Mutants []pageMutant
}

// fileCounts are a file's outcomes, for its page and the index.
type fileCounts struct {
	// Path is the file's, Href its page's (relative to the index).
	Path, Href string
	// Killed to NotRun count its mutants, Lines its changed lines no spec
	// executes.
	Killed, Survived, Unknown, Stillborn, NotRun, Lines int
	// Score is the file's mutation score, "-" when none.
	Score string
}

// filePage is the data of a file's page.
type filePage struct {
	fileCounts
	Title    string
	Index    string
	Summary  string
	Partial  string // why only the changed lines are shown, if so
	Sections [][]pageLine
}

// indexPage is the data of the index page.
type indexPage struct {
	Title   string
	Summary string
	Files   []fileCounts
	Total   fileCounts
	// Survivors link to the survived mutants on their pages.
	Survivors []survivorLink
}

// survivorLink is a survivor on the index page.
type survivorLink struct{ ID, Description, Href string }

// pageHead is the start of every page: its title and style.
const pageHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
` + string(coverage.PageStyle) + `
tr.killed td.s { background: #d6f5d6; }
tr.survived td.s, div.survived { background: #f8d0d0; }
tr.open td.s { background: #fbf0c8; }
tr.miss td.s { background: #f3d9f3; }
tr.none td.s, tr.changed td.s { background: #eeeeee; }
tr.killed td.m { color: #1a7f1a; }
tr.survived td.m, tr.miss td.m { color: #b00000; }
div.mut { font-family: sans-serif; white-space: normal; margin: .2em 0 .4em 0; padding: .2em .5em; border-left: 4px solid #ccc; }
div.killed { border-color: #1a7f1a; }
div.survived { border-color: #b00000; }
div.unknown, div.stillborn, div.not-run { border-color: #d0a000; }
div.mut pre { margin: .2em 0; }
span.add { background: #d6f5d6; }
span.del { background: #f8d0d0; }
td.r { font-style: italic; }
table.idx td { font-family: sans-serif; text-align: right; }
table.idx td.f { text-align: left; }
</style></head><body>
`

var filePageTemplate = template.Must(template.New("file").Parse(
	pageHead + `<p><a href="{{.Index}}">all files</a></p>
<h1>{{.Path}}</h1>
<p>{{.Summary}}</p>
{{if .Partial}}<p><i>{{.Partial}}</i></p>
{{end}}<p>Marks, one per mutant: <b style="color:#1a7f1a">K</b> killed, <b style="color:#b00000">S</b> survived, <b>?</b> unknown, <b>x</b> stillborn, <b>.</b> not run; <b>-</b> a changed line without mutants (why on its right), <b>~</b> changed, not executable. Each mutant is under its line, with its diff; a survivor's is open.</p>
<table>
{{range $i, $s := .Sections}}{{if $i}}<tr class="gap"><td colspan="4">&#8942;</td></tr>
{{end}}{{range $s}}<tr{{with .Class}} class="{{.}}"{{end}} id="L{{.Line}}"><td class="n">{{.Line}}</td><td class="m">{{.Mark}}</td><td class="s">{{.Text}}</td><td class="r">{{.Note}}</td></tr>
{{if .Mutants}}<tr class="muts"><td></td><td></td><td colspan="2">{{range .Mutants}}<div class="mut {{.Status}}" id="{{.ID}}"><b>{{.ID}}</b> {{.Operator}}: {{.Description}}<br><b>{{.Outcome}}</b>{{if .Details}}<ul>{{range .Details}}<li>{{.}}</li>{{end}}</ul>{{end}}
<details{{if eq .Status "survived"}} open{{end}}><summary>diff</summary><pre>{{range .Diff}}<span{{with .Class}} class="{{.}}"{{end}}>{{.Text}}</span>
{{end}}</pre></details></div>
{{end}}</td></tr>
{{end}}{{end}}{{end}}</table>
</body></html>
`))

var indexPageTemplate = template.Must(template.New("index").Parse(
	pageHead + `<h1>Mutants of the changed lines</h1>
<p>{{.Summary}}</p>
<table class="idx">
<tr><th>file</th><th>killed</th><th>survived</th><th>unknown</th><th>stillborn</th><th>not run</th><th>lines not executed</th><th>score</th></tr>
{{range .Files}}<tr><td class="f"><a href="{{.Href}}">{{.Path}}</a></td><td>{{.Killed}}</td><td>{{.Survived}}</td><td>{{.Unknown}}</td><td>{{.Stillborn}}</td><td>{{.NotRun}}</td><td>{{.Lines}}</td><td>{{.Score}}</td></tr>
{{end}}{{with .Total}}<tr><td class="f"><b>all</b></td><td>{{.Killed}}</td><td>{{.Survived}}</td><td>{{.Unknown}}</td><td>{{.Stillborn}}</td><td>{{.NotRun}}</td><td>{{.Lines}}</td><td>{{.Score}}</td></tr>
{{end}}</table>
{{if .Survivors}}<h2>Survived</h2>
<ul>{{range .Survivors}}<li><a href="{{.Href}}">{{.ID}}</a> {{.Description}}</li>
{{end}}</ul>
{{end}}<p>Score = killed / (killed + survived); unknown, stillborn and not run mutants are not counted. Lines not executed are changed executable lines no spec executes: no spec can kill a mutant there.</p>
</body></html>
`))

// WritePages writes the report as self-contained HTML pages into dir (the
// state directory): PagesIndex, the files with their counts and scores
// and links to the survivors, and for each file with mutants or lines the
// selection left without one a page at coverage.AnnotatedPath(file), the
// annotated view of a coverage report: the changed lines with a few lines around, each with a
// mark per mutant, and under it its mutants, their outcomes (killed by
// which spec and class, survived with the specs that ran, unknown or
// stillborn with why) and their diffs; a line no spec executes says so.
// src reads the sources the mutants were made of (paths relative to the
// tree); when it is nil or lacks a file, that page shows the changed
// lines only. changed are the coverage report's changed lines, executable
// or not (ReadChangedLines). It returns the paths written, relative to
// dir, the index last (PagesNote says where they are).
func (r *Report) WritePages(dir string, src fs.FS, changed []Line) ([]string, error) {
	views := r.fileViews(changed)
	paths := make([]string, 0, len(views))
	for p := range views {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	index := indexPage{Title: "mutants", Summary: r.Summary()}
	var written []string
	for _, p := range paths {
		v := views[p]
		page := v.page(src)
		if err := writePage(dir, page.Href, filePageTemplate, page); err != nil {
			return written, err
		}
		written = append(written, page.Href)
		index.Files = append(index.Files, v.counts)
		index.Total.add(v.counts)
	}
	index.Total.Score = score(index.Total.Killed, index.Total.Survived)
	for _, res := range r.byStatus(Survived) {
		m := res.Mutant
		index.Survivors = append(index.Survivors, survivorLink{ID: m.ID, Description: m.Description, Href: coverage.AnnotatedPath(m.File) + "#" + m.ID})
	}
	if err := writePage(dir, PagesIndex, indexPageTemplate, index); err != nil {
		return written, err
	}
	return append(written, PagesIndex), nil
}

// PagesNote is the line that ends a text report after WritePages wrote
// written (its result) into dir: where the index and the file pages are.
func PagesNote(dir string, written []string) string {
	return fmt.Sprintf("\nAnnotated pages: %s (the files, their counts and scores) and %d per file, %s\n",
		filepath.Join(dir, PagesIndex), len(written)-1, filepath.Join(dir, coverage.AnnotatedPath("<file>")))
}

// writePage executes a page's template and writes the page to dir/name.
func writePage(dir, name string, t *template.Template, data any) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return fmt.Errorf("write mutate page %s: %w", name, err)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write mutate page %s: %w", name, err)
	}
	if err := fsutil.WriteFileAtomic(p, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write mutate page %s: %w", name, err)
	}
	return nil
}

// fileView gathers what a file's page shows of its changed lines.
type fileView struct {
	counts fileCounts
	lines  map[int]*pageLine
}

// line returns the page's line l, made on first use.
func (v *fileView) line(l Line) *pageLine {
	pl := v.lines[l.Line]
	if pl == nil {
		pl = &pageLine{Line: l.Line, Text: l.Text}
		v.lines[l.Line] = pl
	}
	return pl
}

// add adds another file's counts to c.
func (c *fileCounts) add(o fileCounts) {
	c.Killed += o.Killed
	c.Survived += o.Survived
	c.Unknown += o.Unknown
	c.Stillborn += o.Stillborn
	c.NotRun += o.NotRun
	c.Lines += o.Lines
}

// score returns a score for a page: a percentage, "-" when nothing was
// scored.
func score(killed, survived int) string {
	if killed+survived == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(killed)/float64(killed+survived))
}

// fileViews returns the view of each file with mutants, run or not, or
// with lines the selection left without one.
func (r *Report) fileViews(changed []Line) map[string]*fileView {
	views := map[string]*fileView{}
	view := func(file string) *fileView {
		v := views[file]
		if v == nil {
			v = &fileView{counts: fileCounts{Path: file, Href: coverage.AnnotatedPath(file)}, lines: map[int]*pageLine{}}
			views[file] = v
		}
		return v
	}
	for _, res := range r.Results {
		m := res.Mutant
		v := view(m.File)
		pl := v.line(Line{File: m.File, Line: m.Line, Text: m.Text})
		pl.Mutants = append(pl.Mutants, resultMutant(res))
		v.counts.count(res.Status)
	}
	for _, m := range r.NotRun {
		v := view(m.File)
		pl := v.line(Line{File: m.File, Line: m.Line, Text: m.Text})
		pl.Mutants = append(pl.Mutants, r.notRunMutant(m))
		v.counts.NotRun++
	}
	if sel := r.Selection; sel != nil {
		for _, ls := range []struct {
			lines []Line
			class string
			why   string
		}{
			{sel.NotExecuted, "miss", notExecuted},
			{sel.OnlyFailing, "none", "executed only by specs that failed without a mutant"},
			{sel.NoMutant, "none", "executed, but no operator applies"},
		} {
			for _, l := range ls.lines {
				v := view(l.File)
				pl := v.line(l)
				pl.Class, pl.Mark, pl.Note = ls.class, "-", ls.why
				if why, ok := sel.Unreadable[l.File]; ok && ls.class == "none" {
					pl.Note = "no mutant could be made of this file: " + why
				}
				if ls.class == "miss" {
					v.counts.Lines++
				}
			}
		}
	}
	for _, l := range changed {
		if v := views[l.File]; v != nil && v.lines[l.Line] == nil {
			pl := v.line(l)
			pl.Class, pl.Mark = "changed", "~"
			if l.Executable {
				pl.Class, pl.Mark = "none", "-"
				pl.Note = fmt.Sprintf("executed by %d spec(s); its mutants were not selected (--mutants, --max-mutants)", len(l.Specs))
			}
		}
	}
	for _, v := range views {
		v.counts.Score = score(v.counts.Killed, v.counts.Survived)
		for _, pl := range v.lines {
			pl.markMutants()
		}
	}
	return views
}

// count counts a result of the file.
func (c *fileCounts) count(s Status) {
	switch s {
	case Killed:
		c.Killed++
	case Survived:
		c.Survived++
	case Unknown:
		c.Unknown++
	case Stillborn:
		c.Stillborn++
	}
}

// markMutants gives a line with mutants its marks, one per mutant, and its
// look: survived when one survived, killed when one was killed, else open.
func (pl *pageLine) markMutants() {
	if len(pl.Mutants) == 0 {
		return
	}
	var ms []string
	pl.Class = "open"
	for _, m := range pl.Mutants {
		mark, ok := marks[Status(m.Status)]
		if !ok {
			mark = "."
		}
		ms = append(ms, mark)
		switch {
		case m.Status == string(Survived):
			pl.Class = "survived"
		case m.Status == string(Killed) && pl.Class != "survived":
			pl.Class = "killed"
		}
	}
	pl.Mark = strings.Join(ms, " ")
}

// resultMutant returns how a page shows a mutant's result.
func resultMutant(res Result) pageMutant {
	m := res.Mutant
	pm := pageMutant{ID: m.ID, Operator: string(m.Operator), Description: m.Description, Status: string(res.Status), Diff: diffLines(m.Diff)}
	switch res.Status {
	case Killed:
		pm.Outcome = fmt.Sprintf("killed by %d spec(s):", len(res.Kills))
		for _, k := range res.Kills {
			pm.Details = append(pm.Details, fmt.Sprintf("[%s] %s: %s", k.Class, k.Spec, k.Message))
		}
	case Survived:
		pm.Outcome = fmt.Sprintf("SURVIVED: the %d spec(s) that ran on it all passed:", len(m.Specs))
		pm.Details = m.Specs
	case Stillborn:
		pm.Outcome = "stillborn (did not compile; not counted): " + res.Reason
	default:
		pm.Outcome = "unknown (no verdict; not counted): " + res.Reason
	}
	return pm
}

// notRunMutant returns how a page shows a mutant the run did not reach.
func (r *Report) notRunMutant(m Mutant) pageMutant {
	why := "the run stopped before it"
	switch {
	case r.Stopped != "":
		why = r.Stopped
	case r.Err != "":
		why = "stopped by an error: " + r.Err
	}
	return pageMutant{ID: m.ID, Operator: string(m.Operator), Description: m.Description, Status: "not-run",
		Outcome: "not run (" + why + ")", Diff: diffLines(m.Diff)}
}

// diffLines splits a diff into lines, added and removed ones marked.
func diffLines(diff string) []diffLine {
	var out []diffLine
	for _, l := range splitLines(diff) {
		dl := diffLine{Text: l}
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
		case strings.HasPrefix(l, "+"):
			dl.Class = "add"
		case strings.HasPrefix(l, "-"):
			dl.Class = "del"
		}
		out = append(out, dl)
	}
	return out
}

// page returns the file's page: its changed lines with context when src
// has the file, else the changed lines alone.
func (v *fileView) page(src fs.FS) *filePage {
	c := v.counts
	page := &filePage{fileCounts: c, Title: c.Path + ": mutants",
		Index: strings.Repeat("../", strings.Count(c.Href, "/")) + PagesIndex}
	page.Summary = fmt.Sprintf("%d mutant(s): %d killed, %d survived, %d unknown, %d stillborn, %d not run; score %s; %d changed line(s) no spec executes.",
		c.Killed+c.Survived+c.Unknown+c.Stillborn+c.NotRun, c.Killed, c.Survived, c.Unknown, c.Stillborn, c.NotRun, c.Score, c.Lines)
	nums := make([]int, 0, len(v.lines))
	for n := range v.lines {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	source, err := readSource(src, c.Path)
	context := coverage.AnnotateContext
	if err != nil {
		page.Partial = fmt.Sprintf("Only the changed lines: %v.", err)
		source, context = nil, 0
	}
	last := 0
	if len(nums) > 0 {
		last = max(nums[len(nums)-1], len(source))
	}
	for _, lines := range coverage.Sections(nums, last, context) {
		section := make([]pageLine, 0, len(lines))
		for _, n := range lines {
			pl := pageLine{Line: n}
			if l := v.lines[n]; l != nil {
				pl = *l
			}
			if n <= len(source) {
				pl.Text = source[n-1]
			}
			section = append(section, pl)
		}
		page.Sections = append(page.Sections, section)
	}
	return page
}

// readSource returns a file's lines from src.
func readSource(src fs.FS, file string) ([]string, error) {
	if src == nil {
		return nil, fmt.Errorf("no sources to read %s from", file)
	}
	data, err := fs.ReadFile(src, file)
	if err != nil {
		return nil, fmt.Errorf("source of %s: %w", file, err)
	}
	return splitLines(strings.ReplaceAll(string(data), "\r\n", "\n")), nil
}
