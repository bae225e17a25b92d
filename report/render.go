package report

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// detailSpan is the span of the detail timeline around a spec's first
// error exit: before it, and after it.
const detailBefore, detailAfter = 0.15, 0.05

func pageTemplates() (*template.Template, error) {
	css, err := assets.ReadFile("assets/report.css")
	if err != nil {
		return nil, err
	}
	js, err := assets.ReadFile("assets/report.js")
	if err != nil {
		return nil, err
	}
	return template.New("report").Funcs(template.FuncMap{
		"css": func() template.CSS { return template.CSS(css) },
		"js":  func() template.JS { return template.JS(js) },
		"f1":  func(x float64) string { return strings.TrimSuffix(fmt.Sprintf("%.1f", x), ".0") },
		"add": func(a, b int) int { return a + b },
	}).ParseFS(assets, "assets/*.tmpl")
}

// link is a named relative URL.
type link struct{ Name, Href string }

type indexPage struct {
	Title                        string
	Groups                       []groupView
	Rows                         []rowView
	Labels                       []LabelCount
	Repeated, AnyTestPatch       bool
	Ran, Passed, Failed, Skipped int
	QEMU                         string
	Coverage, KernelFiles        []link
}

type groupView struct {
	Name, Kernel, Release, API, Accel, TestPatch string
	Passed, Failed, Skipped                      int
	SpecTime, Wall                               string
	SkipReasons                                  []reasonCount
}

type reasonCount struct {
	Reason string
	N      int
}

type rowView struct {
	Text, Labels, Rate string
	Cells              []cellView
}

type cellView struct{ Outcome, Href, Detail string }

type specPage struct {
	Spec                 *Spec
	Group, Index, Labels string
	Timeline             *timelineView
	Exits                []Sched
	Log                  []KmsgLine
	Files                []link
	Dir                  string
	Bundle               *link
	Rerun                string
}

type timelineView struct {
	Notes    []string
	Overview svgView
	Detail   *svgView
	Owners   []Owner
}

// Write renders the report into dir: index.html and a page per spec below
// specs/. Links to the artifacts are relative, so the directory and the
// artifacts can move together.
func Write(r *Report, dir string) error {
	t, err := pageTemplates()
	if err != nil {
		return fmt.Errorf("report: templates: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	idx := r.index(dir)
	for _, g := range r.Groups {
		for _, s := range g.Specs {
			page := filepath.Join(dir, specPath(s))
			if err := render(t, "spec.tmpl", page, r.specPage(s, page, dir)); err != nil {
				return err
			}
		}
	}
	return render(t, "index.tmpl", filepath.Join(dir, "index.html"), idx)
}

// specPath is a spec's page, relative to the report's directory.
func specPath(s *Spec) string {
	slug := s.Slug
	if slug == "" {
		slug = filepath.Base(s.Dir)
	}
	return filepath.Join("specs", filepath.FromSlash(s.Group.Name), slug+".html")
}

func render(t *template.Template, name, path string, data any) error {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("report: render %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// href is the relative URL from a page to a file.
func href(page, target string) string {
	rel, err := filepath.Rel(filepath.Dir(page), target)
	if err != nil {
		return "file://" + filepath.ToSlash(target)
	}
	return filepath.ToSlash(rel)
}

func (r *Report) index(dir string) indexPage {
	page := filepath.Join(dir, "index.html")
	p := indexPage{Title: "scxcheck run report", Repeated: r.Repeated, Labels: r.Labels}
	for _, g := range r.Groups {
		gv := groupView{Name: g.Name, Passed: g.Passed, Failed: g.Failed, Skipped: g.Skipped,
			Kernel: g.Props["scxcheck.kernel"], Release: or(g.Props["scxcheck.kernel.release"]), API: or(g.Props["scxcheck.kernel.api"]),
			Accel: g.Props["scxcheck.accel"], TestPatch: g.Props["scxcheck.kernel.test_patch"], SpecTime: dur(g.SpecTime), Wall: dur(g.Wall)}
		if len(g.Specs) > 0 {
			if gv.Kernel == "" {
				gv.Kernel = g.Specs[0].Kernel
			}
			if gv.Accel == "" {
				gv.Accel = accelOf(g.Specs[0].QEMU)
			}
			if p.QEMU == "" {
				p.QEMU = strings.Join(g.Specs[0].QEMU, " ")
			}
		}
		for reason, n := range g.SkipReasons {
			gv.SkipReasons = append(gv.SkipReasons, reasonCount{Reason: reason, N: n})
		}
		sort.Slice(gv.SkipReasons, func(i, j int) bool { return gv.SkipReasons[i].Reason < gv.SkipReasons[j].Reason })
		p.AnyTestPatch = p.AnyTestPatch || gv.TestPatch != ""
		p.Groups = append(p.Groups, gv)
		p.Passed += g.Passed
		p.Failed += g.Failed
		p.Skipped += g.Skipped
	}
	p.Ran = p.Passed + p.Failed
	if len(r.Groups) == 1 && r.Groups[0].Props["scxcheck.kernel.release"] != "" {
		p.Title += ": Linux " + r.Groups[0].Props["scxcheck.kernel.release"]
	}
	for _, row := range r.Rows {
		rv := rowView{Text: row.Text, Labels: strings.Join(row.Labels, ", "), Rate: fmt.Sprintf("%.0f%% (%d/%d)", 100*row.Rate, row.Passed, row.Passed+row.Failed)}
		for _, s := range row.Specs {
			if s == nil {
				rv.Cells = append(rv.Cells, cellView{})
				continue
			}
			c := cellView{Outcome: s.Outcome(), Href: href(page, filepath.Join(dir, specPath(s))), Detail: fmt.Sprintf("%.1f s", s.RunTime)}
			if s.Failed() {
				c.Detail = s.Class + ", " + c.Detail
			}
			rv.Cells = append(rv.Cells, c)
		}
		p.Rows = append(p.Rows, rv)
	}
	for _, c := range r.Coverage {
		name, err := filepath.Rel(filepath.Dir(r.Dir), c)
		if err != nil {
			name = c
		}
		p.Coverage = append(p.Coverage, link{Name: filepath.ToSlash(name), Href: href(page, c)})
	}
	for _, k := range r.KernelFiles {
		p.KernelFiles = append(p.KernelFiles, link{Name: filepath.Base(k), Href: href(page, k)})
	}
	return p
}

func (r *Report) specPage(s *Spec, page, dir string) specPage {
	p := specPage{Spec: s, Group: s.Group.Name, Index: href(page, filepath.Join(dir, "index.html")), Labels: strings.Join(s.Labels, ", "),
		Exits: s.Schedulers, Dir: href(page, s.Dir) + "/"}
	for _, f := range s.Files {
		p.Files = append(p.Files, link{Name: f, Href: href(page, filepath.Join(s.Dir, f))})
	}
	if s.Repro != "" {
		p.Bundle = &link{Name: filepath.Join(s.Dir, s.Repro), Href: href(page, filepath.Join(s.Dir, s.Repro))}
	}
	for _, k := range s.Kmsg {
		if k.Level <= 4 || strings.HasPrefix(k.Text, "sched_ext:") {
			p.Log = append(p.Log, k)
		}
	}
	focus := shellQuote("^" + regexp.QuoteMeta(s.Text) + "$")
	kernel := s.Kernel
	if kernel == "" {
		kernel = "default"
	}
	p.Rerun = fmt.Sprintf("scxcheck run --kernel %s --focus %s\nscxcheck repro --kernel %s --out bundles --focus %s", shellQuote(kernel), focus, shellQuote(kernel), focus)
	if t := s.Timeline; t != nil {
		tv := &timelineView{Notes: t.Notes, Owners: t.Owners, Overview: t.layout("tl-"+s.Slug, t.Start, t.End)}
		for _, m := range t.Marks {
			if m.Kind == MarkExit {
				from, to := math.Max(t.Start, m.Time-detailBefore), math.Min(t.End, m.Time+detailAfter)
				if to > from {
					d := t.layout("tl-exit-"+s.Slug, from, to)
					tv.Detail = &d
				}
				break
			}
		}
		p.Timeline = tv
	}
	return p
}

// accelOf reads the accelerator off a QEMU command line.
func accelOf(qemu []string) string {
	for i, a := range qemu {
		if a == "-accel" && i+1 < len(qemu) {
			return qemu[i+1]
		}
		if a == "-enable-kvm" {
			return "kvm"
		}
	}
	return ""
}

// or is s, or a dash for what the artifacts do not say.
func or(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func dur(s float64) string {
	if s <= 0 {
		return "–"
	}
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

func shellQuote(s string) string {
	if regexp.MustCompile(`^[A-Za-z0-9_./+:=-]+$`).MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
