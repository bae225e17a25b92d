package coverage

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// AnnotateContext is how many lines around the changed lines an annotated
// page shows.
const AnnotateContext = 4

// PageStyle is the style sheet the annotated pages share (this package's
// and package mutate's): a table of numbered source lines, td.n the line
// number, td.c a count, td.m a mark, td.s the source text, td.r a note,
// and a tr.gap row between sections.
const PageStyle template.CSS = `body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-family: monospace; font-size: 13px; }
td { padding: 0 .5em; white-space: pre; vertical-align: top; tab-size: 8; }
td.n, td.c { text-align: right; color: #666; }
td.m { font-weight: bold; }
td.r { color: #555; font-family: sans-serif; white-space: normal; max-width: 30em; }
tr.gap td { color: #999; text-align: center; }`

// Sections returns the line numbers an annotated page shows of a file of
// n lines: each changed line (in order) with context lines on either
// side, lines that overlap or touch in one section, sections in order.
func Sections(changed []int, n, context int) [][]int {
	var out [][]int
	var section []int
	last := -1
	for _, l := range changed {
		lo, hi := max(1, l-context), min(n, l+context)
		if last >= 0 && lo > last+1 && section != nil {
			out = append(out, section)
			section = nil
		}
		for k := max(lo, last+1); k <= hi; k++ {
			section = append(section, k)
		}
		last = max(last, hi)
	}
	if section != nil {
		out = append(out, section)
	}
	return out
}

// annotatedLine is one line of the annotated page.
type annotatedLine struct {
	Line  int
	Text  string
	Count string // "" for a line gcov does not instrument
	// Class is the row's look: "hit" or "miss" (changed executable),
	// "changed" (changed, not executable), "" (context).
	Class string
	Mark  string
	Runs  string
}

type annotatedPage struct {
	Path                          string
	Changed, Executable, Executed int
	Instrumented                  bool
	Summary                       string
	Sections                      [][]annotatedLine
	HasRuns                       bool
}

var annotatedTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Path}}: changed-line coverage</title>
<style>
` + string(PageStyle) + `
tr.hit td.s { background: #d6f5d6; }
tr.miss td.s { background: #f8d0d0; }
tr.changed td.s { background: #eeeeee; }
tr.hit td.m { color: #1a7f1a; }
tr.miss td.m { color: #b00000; }
</style></head><body>
<h1>{{.Path}}</h1>
<p>{{.Summary}}</p>
<p>Marks: <b style="color:#1a7f1a">+</b> changed and executed, <b style="color:#b00000">!</b> changed and not executed, <b>~</b> changed, not executable. The count column is gcov's count for every instrumented line{{if .HasRuns}}; the last column lists the specs that executed a changed line{{end}}.</p>
<table>
{{range $i, $s := .Sections}}{{if $i}}<tr class="gap"><td colspan="5">&#8942;</td></tr>
{{end}}{{range $s}}<tr class="{{.Class}}"><td class="n">{{.Line}}</td><td class="c">{{.Count}}</td><td class="m">{{.Mark}}</td><td class="s">{{.Text}}</td><td class="r">{{.Runs}}</td></tr>
{{end}}{{end}}</table>
</body></html>
`))

// WriteAnnotated writes a self-contained HTML page of one changed file:
// its changed lines with a few lines around, each with gcov's count, a
// mark for changed lines that ran, did not, or are not executable, and the
// runs that executed each changed line.
func (r *Report) WriteAnnotated(w io.Writer, file string) error {
	f := r.file(file)
	if f == nil {
		return fmt.Errorf("annotate %s: not a changed file", file)
	}
	page := annotatedPage{Path: f.Path, Changed: len(f.Lines), Executable: f.Executable, Executed: f.Executed, Instrumented: f.Instrumented}
	switch {
	case !f.Instrumented:
		page.Summary = fmt.Sprintf("%d changed lines; the coverage has no line of this file.", len(f.Lines))
	default:
		page.Summary = fmt.Sprintf("%d changed lines, %d executable, %d executed.", len(f.Lines), f.Executable, f.Executed)
	}
	changed := map[int]LineReport{}
	nums := make([]int, len(f.Lines))
	for i, l := range f.Lines {
		changed[l.Line] = l
		nums[i] = l.Line
	}
	for _, lines := range Sections(nums, len(f.source), AnnotateContext) {
		section := make([]annotatedLine, len(lines))
		for i, n := range lines {
			section[i] = f.annotatedLine(n, changed, &page)
		}
		page.Sections = append(page.Sections, section)
	}
	if err := annotatedTemplate.Execute(w, &page); err != nil {
		return fmt.Errorf("annotate %s: %w", file, err)
	}
	return nil
}

// annotatedLine returns line n of the page: its text and count, and for a
// changed line its look, mark and runs.
func (f *FileReport) annotatedLine(n int, changed map[int]LineReport, page *annotatedPage) annotatedLine {
	al := annotatedLine{Line: n, Text: f.text(n)}
	if c, ok := f.count(n); ok {
		al.Count = fmt.Sprint(c)
	}
	cl, ok := changed[n]
	switch {
	case !ok:
	case !cl.Executable:
		al.Class, al.Mark = "changed", "~"
	case cl.Count > 0:
		al.Class, al.Mark = "hit", "+"
		al.Runs = strings.Join(cl.Runs, ", ")
		page.HasRuns = page.HasRuns || len(cl.Runs) > 0
	default:
		al.Class, al.Mark = "miss", "!"
	}
	return al
}
