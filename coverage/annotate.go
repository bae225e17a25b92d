package coverage

import (
	"fmt"
	"html/template"
	"io"
	"strings"
)

// annotateContext is how many lines around the changed lines the annotated
// page shows.
const annotateContext = 4

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
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-family: monospace; font-size: 13px; }
td { padding: 0 .5em; white-space: pre; vertical-align: top; tab-size: 8; }
td.n, td.c { text-align: right; color: #666; }
tr.hit td.s { background: #d6f5d6; }
tr.miss td.s { background: #f8d0d0; }
tr.changed td.s { background: #eeeeee; }
td.m { font-weight: bold; }
tr.hit td.m { color: #1a7f1a; }
tr.miss td.m { color: #b00000; }
td.r { color: #555; font-family: sans-serif; white-space: normal; max-width: 30em; }
tr.gap td { color: #999; text-align: center; }
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
	for _, l := range f.Lines {
		changed[l.Line] = l
	}
	var section []annotatedLine
	last := -1
	for _, l := range f.Lines {
		lo, hi := max(1, l.Line-annotateContext), min(len(f.source), l.Line+annotateContext)
		if last >= 0 && lo > last+1 {
			page.Sections = append(page.Sections, section)
			section = nil
		}
		for n := max(lo, last+1); n <= hi; n++ {
			al := annotatedLine{Line: n, Text: f.text(n)}
			if c, ok := f.count(n); ok {
				al.Count = fmt.Sprint(c)
			}
			if cl, ok := changed[n]; ok {
				switch {
				case !cl.Executable:
					al.Class, al.Mark = "changed", "~"
				case cl.Count > 0:
					al.Class, al.Mark = "hit", "+"
					al.Runs = strings.Join(cl.Runs, ", ")
					page.HasRuns = page.HasRuns || len(cl.Runs) > 0
				default:
					al.Class, al.Mark = "miss", "!"
				}
			}
			section = append(section, al)
		}
		last = max(last, hi)
	}
	if section != nil {
		page.Sections = append(page.Sections, section)
	}
	if err := annotatedTemplate.Execute(w, &page); err != nil {
		return fmt.Errorf("annotate %s: %w", file, err)
	}
	return nil
}
