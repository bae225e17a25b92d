package mutate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

const distantFile = "kernel/sched/ext/distant.c"

// pagesFixture returns the report of testdata/pages.json on the distant
// snippet: the fixture's results and not-run mutants, with the mutants
// (diffs, specs) Select makes of its lines, and its changed lines.
func pagesFixture(t *testing.T) (*Report, []Line) {
	t.Helper()
	data, err := os.ReadFile("testdata/pages.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Lines []Line `json:"lines"`
		// A result names its mutant by its id only.
		Results []struct {
			ID string `json:"id"`
			Result
		} `json:"results"`
		NotRun  []string `json:"not_run"`
		Stopped string   `json:"stopped"`
	}
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatal(err)
	}
	ids := append([]string(nil), fx.NotRun...)
	for _, r := range fx.Results {
		ids = append(ids, r.ID)
	}
	for i := range ids {
		ids[i] = regexp.QuoteMeta(ids[i])
	}
	sel, err := Select(distantFS(t), fx.Lines, SelectOptions{Filter: regexp.MustCompile("^(" + strings.Join(ids, "|") + ")$")})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Mutant{}
	for _, m := range sel.Mutants {
		byID[m.ID] = m
	}
	rep := &Report{Selection: sel, Stopped: fx.Stopped}
	for _, r := range fx.Results {
		m, ok := byID[r.ID]
		if !ok {
			t.Fatalf("no mutant %s", r.ID)
		}
		r.Result.Mutant = m
		rep.Results = append(rep.Results, r.Result)
	}
	for _, id := range fx.NotRun {
		rep.NotRun = append(rep.NotRun, byID[id])
	}
	rep.count()
	return rep, fx.Lines
}

// node finds the first element below n with the attribute key=value.
func node(n *html.Node, key, value string) *html.Node {
	if n.Type == html.ElementNode && attr(n, key) == value {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f := node(c, key, value); f != nil {
			return f
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text returns the text below n.
func text(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(text(c))
	}
	return b.String()
}

// cells returns the texts of a row's cells.
func cells(tr *html.Node) []string {
	var out []string
	for c := tr.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && c.Data == "td" {
			out = append(out, text(c))
		}
	}
	return out
}

func parsePage(t *testing.T, path string) (*html.Node, string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	page := string(data)
	for _, bad := range []string{"<script", "<link", "http:", "https:", "ZgotmplZ"} {
		if strings.Contains(page, bad) {
			t.Errorf("%s is not self-contained, or a value was refused: it holds %q", path, bad)
		}
	}
	return doc, page
}

// TestPages builds the pages of the fixture and checks a file's page: each
// changed line's mark, look and note, the source around them escaped, and
// each mutant's outcome and diff under its line.
func TestPages(t *testing.T) {
	rep, lines := pagesFixture(t)
	dir := t.TempDir()
	written, err := rep.WritePages(dir, distantFS(t), lines)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"files/" + distantFile + ".html", "index.html"}; !reflect.DeepEqual(written, want) {
		t.Errorf("written %v, want %v", written, want)
	}
	doc, page := parsePage(t, filepath.Join(dir, "files", distantFile+".html"))
	src, _ := os.ReadFile("testdata/distant.c")
	source := splitLines(string(src))
	for _, c := range []struct {
		line        int
		class, mark string
		note        string
	}{
		{3, "changed", "~", ""},
		{19, "none", "-", "executed, but no operator applies"},
		{27, "", "", ""}, // context: 4 lines before 31
		{31, "killed", "K", ""},
		{32, "open", ".", ""},
		{34, "miss", "-", "not executed: no spec can kill a mutant here"},
		{37, "survived", "S x", ""},
		{40, "", "", ""}, // context to the end of the file
	} {
		tr := node(doc, "id", "L"+itoa(c.line))
		if tr == nil {
			t.Errorf("no row of line %d", c.line)
			continue
		}
		want := []string{itoa(c.line), c.mark, source[c.line-1], c.note}
		if got := cells(tr); attr(tr, "class") != c.class || !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: class %q, cells %q; want %q, %q", c.line, attr(tr, "class"), got, c.class, want)
		}
	}
	for _, n := range []int{10, 14, 41} {
		if node(doc, "id", "L"+itoa(n)) != nil {
			t.Errorf("line %d shown: outside the context", n)
		}
	}
	for _, c := range []struct {
		id, class string
		want      []string
	}{
		{distantFile + ":31:negate-condition", "mut killed", []string{"killed by 1 spec(s):", "[exit] " + distantSpec + ": Expected <bool>: false to be true",
			"-\tif (unlikely(scx_parent(child) != parent)) {\n+\tif (!(unlikely(scx_parent(child) != parent))) {"}},
		{distantFile + ":37:swap-relational", "mut survived", []string{"SURVIVED: the 2 spec(s) that ran on it all passed:", bootSpec, dispatchA,
			"-\treturn scx_dispatch_sched(child, rq, rq->scx.sub_dispatch_prev, true) !=\n+\treturn scx_dispatch_sched(child, rq, rq->scx.sub_dispatch_prev, true) =="}},
		{distantFile + ":37:replace-return", "mut stillborn", []string{"stillborn (did not compile; not counted): kernel/sched/ext/distant.c:37:16: error: returning 'int'"}},
		{distantFile + ":32:remove-call", "mut not-run", []string{"not run (--budget 1h0m0s used up)", "-\t\tscx_error(parent, \"trying to dispatch"}},
	} {
		div := node(doc, "id", c.id)
		if div == nil {
			t.Errorf("no mutant %s", c.id)
			continue
		}
		if attr(div, "class") != c.class {
			t.Errorf("%s: class %q, want %q", c.id, attr(div, "class"), c.class)
		}
		for _, w := range c.want {
			if !strings.Contains(text(div), w) {
				t.Errorf("%s lacks %q:\n%s", c.id, w, text(div))
			}
		}
		details, open := findAttr(div, "details", "open")
		if want := c.class == "mut survived"; open != want || details == nil {
			t.Errorf("%s: diff open %v, want %v", c.id, open, want)
		}
	}
	// The source text escaped as HTML, not taken as markup.
	for _, want := range []string{"rq-&gt;scx.sub_dispatch_prev", "&#34;trying to dispatch a distant sub-sched on cgroup %llu&#34;", "Expected &lt;bool&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(page, "border-collapse") || !strings.Contains(page, `<a href="../../../../index.html">`) {
		t.Error("page lacks the shared style or the link to the index")
	}
}

// findAttr returns whether an element named name below n has the
// attribute key.
func findAttr(n *html.Node, name, key string) (*html.Node, bool) {
	if n.Type == html.ElementNode && n.Data == name {
		for _, a := range n.Attr {
			if a.Key == key {
				return n, true
			}
		}
		return n, false
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if f, ok := findAttr(c, name, key); f != nil {
			return f, ok
		}
	}
	return nil, false
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestPagesIndex checks the index page: a row per file with its counts,
// linking to its page, and the total; the paths WritePages returns, and
// the note that names them.
func TestPagesIndex(t *testing.T) {
	rep, lines := pagesFixture(t)
	dir := t.TempDir()
	written, err := rep.WritePages(dir, distantFS(t), lines)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := parsePage(t, filepath.Join(dir, "index.html"))
	a := node(doc, "href", "files/"+distantFile+".html")
	if a == nil || text(a) != distantFile {
		t.Fatal("the index does not link to the file's page")
	}
	// killed, survived, unknown, stillborn, not run, lines not executed, score
	want := []string{distantFile, "1", "1", "0", "1", "1", "1", "50.0%"}
	if got := cells(a.Parent.Parent); !reflect.DeepEqual(got, want) {
		t.Errorf("index row %q, want %q", got, want)
	}
	if a := node(doc, "href", "files/"+distantFile+".html#"+distantFile+":37:swap-relational"); a == nil || text(a) != distantFile+":37:swap-relational" {
		t.Error("the index does not link to the survivor")
	}
	if !strings.Contains(text(doc), rep.Summary()) {
		t.Errorf("the index lacks the summary %q", rep.Summary())
	}
	want = []string{"files/" + distantFile + ".html", "index.html"}
	if !reflect.DeepEqual(written, want) {
		t.Errorf("written %q, want %q", written, want)
	}
	note := "\nAnnotated pages: " + filepath.Join(dir, "index.html") + " (the files, their counts and scores) and 1 per file, " + filepath.Join(dir, "files/<file>.html") + "\n"
	if got := PagesNote(dir, written); got != note {
		t.Errorf("PagesNote %q, want %q", got, note)
	}
}

// TestPagesWithoutSource checks a page whose source cannot be read: the
// changed lines alone, with the coverage report's text, and why.
func TestPagesWithoutSource(t *testing.T) {
	rep, lines := pagesFixture(t)
	dir := t.TempDir()
	if _, err := rep.WritePages(dir, nil, lines); err != nil {
		t.Fatal(err)
	}
	doc, page := parsePage(t, filepath.Join(dir, "files", distantFile+".html"))
	if !strings.Contains(page, "Only the changed lines: no sources to read "+distantFile+" from.") {
		t.Error("the page does not say why it shows the changed lines only")
	}
	for _, n := range []int{3, 19, 31, 32, 34, 37} {
		if node(doc, "id", "L"+itoa(n)) == nil {
			t.Errorf("no row of changed line %d", n)
		}
	}
	if node(doc, "id", "L27") != nil || node(doc, "id", "L38") != nil {
		t.Error("context lines without the source")
	}
	if tr := node(doc, "id", "L34"); tr == nil || cells(tr)[2] != "\t\treturn false;" {
		t.Error("line 34 lacks the coverage report's text")
	}
	if node(doc, "id", distantFile+":37:swap-relational") == nil {
		t.Error("no mutant without the source")
	}
}
