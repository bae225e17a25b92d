package report

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/proto"
)

// Report is a run, as its artifacts tell it.
type Report struct {
	// Dir is the artifacts directory it was built from.
	Dir string
	// Groups are the runs in it: one for a plain run, one per kernel
	// (several --kernel) or per run (--repeat).
	Groups []*Group
	// Repeated is true when the groups are repetitions of one run.
	Repeated bool
	// Rows are the specs, one per spec text, in the order they first ran.
	Rows []*Row
	// Labels counts the outcomes per label, over every group.
	Labels []LabelCount
	// Coverage lists the coverage pages found (coverage/ in or beside
	// the artifacts directory); KernelFiles the kernel build's files.
	Coverage, KernelFiles []string
}

// Group is one run of the specs against one kernel.
type Group struct {
	// Name is the directory below Report.Dir ("" for a plain run): the
	// kernel's label or run-<i>.
	Name string
	// Props are the run's JUnit suite properties (scxcheck.kernel, ...),
	// Wall its JUnit time in seconds (0 if unknown).
	Props map[string]string
	Wall  float64
	Specs []*Spec
	// Passed, Failed, Skipped count its specs; SkipReasons the skips.
	Passed, Failed, Skipped int
	SkipReasons             map[string]int
	// SpecTime is the sum of its specs' run times.
	SpecTime float64
}

// Row is one spec over the groups.
type Row struct {
	Text   string
	Labels []string
	// Specs holds the spec's run in each group, nil where it did not run.
	Specs []*Spec
	// Passed and Failed count the groups; Rate is passed/(passed+failed).
	Passed, Failed int
	Rate           float64
}

// LabelCount is the outcomes of the specs with one label.
type LabelCount struct {
	Label                   string
	Passed, Failed, Skipped int
}

// Spec is one spec that ran, with what its artifacts say.
type Spec struct {
	specFile
	Group *Group
	// Dir is its artifacts directory.
	Dir string
	// Files are the artifacts present, by name (console.log, ...), and
	// Repro the repro bundle's script, "" if none.
	Files []string
	Repro string
	// Kmsg is its kernel log.
	Kmsg []KmsgLine
	// Timeline is what the spec's events say happened when; nil when
	// the spec has no events at all.
	Timeline *Timeline
}

// specFile is spec.json (harness.SpecRecord).
type specFile struct {
	Text       string   `json:"text"`
	Labels     []string `json:"labels"`
	Slug       string   `json:"slug"`
	State      string   `json:"state"`
	Class      string   `json:"class"`
	Failure    string   `json:"failure"`
	Location   string   `json:"location"`
	RunTime    float64  `json:"runtime_s"`
	Kernel     string   `json:"kernel"`
	QEMU       []string `json:"qemu"`
	Schedulers []Sched  `json:"schedulers"`
}

// Sched is one scheduler a spec loaded, with its exit (exits.json).
type Sched struct {
	Name     string          `json:"name"`
	Fixture  string          `json:"fixture"`
	ID       int             `json:"id"`
	CgroupID uint64          `json:"cgroup_id"`
	Exit     *proto.ExitInfo `json:"exit"`
	Err      string          `json:"error"`
}

// Failed reports whether the spec failed.
func (s *Spec) Failed() bool { return s.Class != "" && s.Class != "none" }

// Passed reports whether the spec passed.
func (s *Spec) Passed() bool { return s.State == "passed" && !s.Failed() }

// Skipped reports whether the spec was skipped.
func (s *Spec) Skipped() bool { return s.State == "skipped" }

// Outcome is one word for the spec's outcome: passed, failed, skipped.
func (s *Spec) Outcome() string {
	switch {
	case s.Failed():
		return "failed"
	case s.Skipped():
		return "skipped"
	case s.Passed():
		return "passed"
	}
	return s.State
}

// KmsgLine is one kernel log record.
type KmsgLine struct {
	Time  float64
	Level int
	Text  string
	// Stamp is the time as the kernel log printed it.
	Stamp string
}

// The artifacts a spec directory may hold, in the order a page lists them.
var artifactFiles = []string{"spec.json", "exits.json", "console.log", "kmsg.txt", "trace.txt", "dump.txt", timelineFile}

// timelineFile is harness.TimelineFile.
const timelineFile = "timeline.txt.gz"

// Options say where Build finds what is not in the artifacts directory.
type Options struct {
	// JUnit is the run's JUnit report (for its properties); "" looks for
	// junit.xml in the artifacts directory or beside it. A group's own
	// junit.xml (a repeated run's) is read too.
	JUnit string
}

// Build reads the artifacts directory of a run. A directory without specs
// (a run that stopped before its first) gives a report with no groups.
func Build(dir string, opts Options) (*Report, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	r := &Report{Dir: abs}
	specs, err := findSpecs(abs)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		// A run that stopped before its first spec: a report of
		// nothing tested.
		return r, nil
	}
	suites := readJUnits(abs, opts.JUnit)
	byGroup := map[string]*Group{}
	for _, p := range specs {
		rel, _ := filepath.Rel(abs, filepath.Dir(filepath.Dir(p)))
		if rel == "." {
			rel = ""
		}
		g := byGroup[rel]
		if g == nil {
			g = &Group{Name: filepath.ToSlash(rel), SkipReasons: map[string]int{}}
			byGroup[rel] = g
			r.Groups = append(r.Groups, g)
		}
		s, err := readSpec(filepath.Dir(p))
		if err != nil {
			return nil, err
		}
		s.Group = g
		g.Specs = append(g.Specs, s)
	}
	sort.Slice(r.Groups, func(i, j int) bool { return groupLess(r.Groups[i].Name, r.Groups[j].Name) })
	r.Repeated = len(r.Groups) > 1
	for _, g := range r.Groups {
		r.Repeated = r.Repeated && runDir.MatchString(g.Name)
		g.count()
		if s, ok := suites.forGroup(g.Name, len(r.Groups)); ok {
			g.Props, g.Wall = s.props(), s.Time
		}
	}
	r.rows()
	r.Coverage = findCoverage(abs)
	r.KernelFiles = findKernelFiles(abs)
	return r, nil
}

var runDir = regexp.MustCompile(`^run-(\d+)$`)

// groupLess orders run-2 before run-10.
func groupLess(a, b string) bool {
	ma, mb := runDir.FindStringSubmatch(a), runDir.FindStringSubmatch(b)
	if ma != nil && mb != nil {
		na, _ := strconv.Atoi(ma[1])
		nb, _ := strconv.Atoi(mb[1])
		return na < nb
	}
	return a < b
}

// findSpecs returns the spec.json files of the spec directories in dir
// (a plain run) and one level below it (a matrix or a repeated run).
func findSpecs(dir string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"*/spec.json", "*/*/spec.json"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		out = append(out, m...)
	}
	// A repro bundle's logs are no spec of the run.
	out = slices.DeleteFunc(out, func(p string) bool { return filepath.Base(filepath.Dir(p)) == "repro" })
	sort.Strings(out)
	return out, nil
}

func readSpec(dir string) (*Spec, error) {
	s := &Spec{Dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	if err := json.Unmarshal(b, &s.specFile); err != nil {
		return nil, fmt.Errorf("report: %s: %w", filepath.Join(dir, "spec.json"), err)
	}
	for _, f := range artifactFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			s.Files = append(s.Files, f)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "repro", "repro.sh")); err == nil {
		s.Repro = "repro/repro.sh"
	}
	if s.Kmsg, err = readKmsg(filepath.Join(dir, "kmsg.txt")); err != nil {
		return nil, err
	}
	trace, err := readLines(filepath.Join(dir, "trace.txt"))
	if err != nil {
		return nil, err
	}
	timeline, err := readLines(filepath.Join(dir, timelineFile))
	if err != nil {
		return nil, err
	}
	s.Timeline = buildTimeline(s, trace, timeline)
	return s, nil
}

// readLines reads a text file's lines, gunzipped if its name ends in .gz;
// a file that is not there has none.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("report: read %s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: read %s: %w", path, err)
	}
	return out, nil
}

// kmsgLine is a line of kmsg.txt: "[%12.6f] <%d> %s".
var kmsgLine = regexp.MustCompile(`^\[\s*(\d+\.\d+)\] <(\d)> (.*)$`)

func readKmsg(path string) ([]KmsgLine, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []KmsgLine
	for _, l := range lines {
		m := kmsgLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		k := KmsgLine{Stamp: m[1], Text: m[3]}
		k.Time, _ = strconv.ParseFloat(m[1], 64)
		k.Level, _ = strconv.Atoi(m[2])
		out = append(out, k)
	}
	return out, nil
}

func (g *Group) count() {
	for _, s := range g.Specs {
		switch {
		case s.Failed():
			g.Failed++
		case s.Skipped():
			g.Skipped++
			g.SkipReasons[s.Failure]++
		case s.Passed():
			g.Passed++
		}
		g.SpecTime += s.RunTime
	}
}

// rows gathers the specs by text, and counts the labels.
func (r *Report) rows() {
	byText := map[string]*Row{}
	labels := map[string]*LabelCount{}
	for gi, g := range r.Groups {
		for _, s := range g.Specs {
			row := byText[s.Text]
			if row == nil {
				row = &Row{Text: s.Text, Labels: s.Labels, Specs: make([]*Spec, len(r.Groups))}
				byText[s.Text] = row
				r.Rows = append(r.Rows, row)
			}
			row.Specs[gi] = s
			switch {
			case s.Failed():
				row.Failed++
			case s.Passed():
				row.Passed++
			}
			for _, l := range s.Labels {
				c := labels[l]
				if c == nil {
					c = &LabelCount{Label: l}
					labels[l] = c
				}
				switch {
				case s.Failed():
					c.Failed++
				case s.Skipped():
					c.Skipped++
				case s.Passed():
					c.Passed++
				}
			}
		}
	}
	for _, row := range r.Rows {
		row.Rate = 1
		if n := row.Passed + row.Failed; n > 0 {
			row.Rate = float64(row.Passed) / float64(n)
		}
	}
	// Failures first, then by text: what a reviewer looks for first.
	sort.SliceStable(r.Rows, func(i, j int) bool {
		fi, fj := r.Rows[i].Failed > 0, r.Rows[j].Failed > 0
		if fi != fj {
			return fi
		}
		return r.Rows[i].Text < r.Rows[j].Text
	})
	for _, c := range labels {
		r.Labels = append(r.Labels, *c)
	}
	sort.Slice(r.Labels, func(i, j int) bool { return r.Labels[i].Label < r.Labels[j].Label })
}

// junitSuite is a JUnit test suite with scxcheck's properties.
type junitSuite struct {
	Name  string  `xml:"name,attr"`
	Time  float64 `xml:"time,attr"`
	Props []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"properties>property"`
	// from is the group directory the file was found in ("" beside the
	// artifacts directory or given).
	from string
}

func (s junitSuite) props() map[string]string {
	m := map[string]string{}
	for _, p := range s.Props {
		m[p.Name] = p.Value
	}
	return m
}

type junitSuites []junitSuite

// readJUnits reads the given JUnit file or junit.xml in or beside dir, and
// each group directory's junit.xml (a repeated run's).
func readJUnits(dir, given string) junitSuites {
	var out junitSuites
	read := func(path, from string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return
		}
		var doc struct {
			Suites []junitSuite `xml:"testsuite"`
		}
		if xml.Unmarshal(b, &doc) != nil {
			return
		}
		for _, s := range doc.Suites {
			s.from = from
			out = append(out, s)
		}
	}
	if given != "" {
		read(given, "")
	} else {
		read(filepath.Join(dir, "junit.xml"), "")
		if len(out) == 0 {
			read(filepath.Join(filepath.Dir(dir), "junit.xml"), "")
		}
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*", "junit.xml"))
	for _, p := range m {
		read(p, filepath.Base(filepath.Dir(p)))
	}
	return out
}

// forGroup finds a group's suite: one in its own directory, one whose
// release or name names it (a matrix), or the only one of a plain run.
func (ss junitSuites) forGroup(name string, groups int) (junitSuite, bool) {
	for _, s := range ss {
		if name != "" && s.from == name {
			return s, true
		}
	}
	for _, s := range ss {
		if s.from == "" && name != "" && (s.props()["scxcheck.kernel.release"] == name || strings.HasSuffix(s.Name, " "+name)) {
			return s, true
		}
	}
	if groups == 1 {
		for _, s := range ss {
			if s.from == "" {
				return s, true
			}
		}
	}
	return junitSuite{}, false
}

// findCoverage lists the files of a coverage/ directory in the artifacts
// directory or beside it (the annotated pages, the summary).
func findCoverage(dir string) []string {
	var out []string
	for _, c := range []string{filepath.Join(dir, "coverage"), filepath.Join(filepath.Dir(dir), "coverage")} {
		_ = filepath.WalkDir(c, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			switch filepath.Ext(p) {
			case ".html", ".txt", ".json", ".info":
				out = append(out, p)
			}
			return nil
		})
		if len(out) > 0 {
			break
		}
	}
	return out
}

// findKernelFiles lists the kernel build's log and config (artifacts/kernel/).
func findKernelFiles(dir string) []string {
	var out []string
	for _, f := range []string{"build.log", "config"} {
		p := filepath.Join(dir, "kernel", f)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}
