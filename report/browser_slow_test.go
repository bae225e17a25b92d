package report

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestSlowBrowser is the report end to end: ci/gate runs the two-children
// and the distant-dispatch specs on the default kernel (with --procs 2),
// then headless Chromium (Debian's chromium, make deps-test) renders
// out/report/index.html and the distant spec's page. It checks both
// screenshots (PNG, not blank) and the DOM Chromium built: the index lists
// both specs; each spec page has a lane per vCPU; the distant one shows
// the root's tasks and its exit mark at the time the kernel logged the
// exit; on the two-children one, a CPU runs each child's tasks between
// the parent's. Minutes of QEMU under TCG: only with SCXCHECK_SLOW=1 (make
// test-slow). SCXCHECK_REPORT_KEEP=DIR keeps the gate's output there.
func TestSlowBrowser(t *testing.T) {
	if os.Getenv("SCXCHECK_SLOW") != "1" {
		t.Skip("slow: set SCXCHECK_SLOW=1 (make test-slow)")
	}
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("no chromium: make deps-test installs Debian's")
	}
	bin := scxcheckBinary(t)
	out := t.TempDir()
	if keep := os.Getenv("SCXCHECK_REPORT_KEEP"); keep != "" {
		out = keep
	}
	gate := exec.CommandContext(t.Context(), "../ci/gate", "--out", out, "--kernel", "default", "--procs", "2",
		"--label-filter", "dispatch || distant", "--focus", "two children|root dispatches its grandchild")
	gate.Env = append(os.Environ(), "SCXCHECK="+bin)
	if b, err := gate.CombinedOutput(); err != nil {
		t.Fatalf("ci/gate: %v\n%s", err, b)
	}
	report := filepath.Join(out, "report")
	distant := findPage(t, report, "scx-bpf-sub-dispatch-of-a-sub-scheduler-that-is-not-a-direct-child-when-the-root-")
	two := findPage(t, report, "scx-bpf-sub-dispatch-when-a-child-attaches-on-a-cgroup-gives-two-children-side-b-")

	for _, page := range []string{filepath.Join(report, "index.html"), distant} {
		shot := strings.TrimSuffix(page, ".html") + ".png"
		run(t, chromium, append(chromiumFlags(), "--screenshot="+shot, "file://"+page)...)
		checkScreenshot(t, shot)
	}

	index := run(t, chromium, append(chromiumFlags(), "--dump-dom", "file://"+filepath.Join(report, "index.html"))...)
	for _, want := range []string{distantText, twoText, `class="badge passed"`} {
		if !strings.Contains(index, want) {
			t.Errorf("the index as Chromium built it lacks %q", want)
		}
	}

	dom := run(t, chromium, append(chromiumFlags(), "--dump-dom", "file://"+distant)...)
	lanes := cpuLanes(overview(t, dom))
	if len(lanes) != 2 {
		t.Fatalf("the distant spec's timeline has %d CPU lanes, want 2", len(lanes))
	}
	if !strings.Contains(strings.Join(append(lanes[0], lanes[1]...), " "), "sched:root@1") {
		t.Error("no CPU ran the root's tasks")
	}
	kmsg, err := os.ReadFile(filepath.Join(out, "artifacts", strings.TrimSuffix(filepath.Base(distant), ".html"), "kmsg.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\[\s*(\d+\.\d+)\] <3> sched_ext: BPF scheduler "root" disabled`).FindSubmatch(kmsg)
	if m == nil {
		t.Fatalf("the kernel logged no error exit of root:\n%s", kmsg)
	}
	mark := `data-kind="exit" data-sched="root" data-time="` + string(m[1]) + `"`
	if !strings.Contains(overview(t, dom), mark) {
		t.Errorf("the timeline has no exit mark for root at %s, the time the kernel logged it", m[1])
	}
	if !strings.Contains(dom, `<h2>Around the first error exit</h2>`) || strings.Count(dom, mark) < 2 {
		t.Errorf("no detail timeline around root's exit at %s", m[1])
	}

	dom = run(t, chromium, append(chromiumFlags(), "--dump-dom", "file://"+two)...)
	for _, child := range []string{"child_a", "child_b"} {
		found := false
		for _, lane := range cpuLanes(overview(t, dom)) {
			found = found || runsBetween(lane, "sched:"+child+"@", "sched:parent@1")
		}
		if !found {
			t.Errorf("no CPU lane shows %s's tasks between the parent's", child)
		}
	}
}

func chromiumFlags() []string {
	return []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1400"}
}

// scxcheckBinary is $SCXCHECK, bin/scxcheck (make test-slow builds it), or
// one built for the test.
func scxcheckBinary(t *testing.T) string {
	if b := os.Getenv("SCXCHECK"); b != "" {
		return b
	}
	if b, err := filepath.Abs("../bin/scxcheck"); err == nil {
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	b := filepath.Join(t.TempDir(), "scxcheck")
	build := exec.Command("go", "build", "-o", b, "../cmd/scxcheck")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build scxcheck: %v\n%s", err, out)
	}
	return b
}

func findPage(t *testing.T, report, prefix string) string {
	m, _ := filepath.Glob(filepath.Join(report, "specs", prefix+"*.html"))
	if len(m) != 1 {
		t.Fatalf("spec pages %s*: %v", prefix, m)
	}
	return m[0]
}

func run(t *testing.T, name string, args ...string) string {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// checkScreenshot checks that a screenshot is a PNG with something drawn:
// many colors, as a page of text and timelines has.
func checkScreenshot(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	colors := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colors) < 20 {
		t.Errorf("%s: %d colors: the page looks blank", path, len(colors))
	}
	t.Logf("screenshot %s: %dx%d, %d colors", path, b.Dx(), b.Dy(), len(colors))
}

// overview returns the spec page's first timeline, over the whole spec
// (the page may have a second one, around the first error exit).
func overview(t *testing.T, dom string) string {
	i := strings.Index(dom, `<svg id="tl-`)
	if i < 0 {
		t.Fatal("the spec page has no timeline")
	}
	j := strings.Index(dom[i:], "</svg>")
	if j < 0 {
		t.Fatal("the spec page's timeline does not end")
	}
	return dom[i : i+j]
}

var (
	laneRow  = regexp.MustCompile(`(?s)<g class="row" data-row="cpu">(.*?)</g>`)
	rectOwns = regexp.MustCompile(`<rect [^>]*data-owner="([^"]+)"`)
)

// cpuLanes returns the owners of each CPU lane's stretches, in order.
func cpuLanes(dom string) [][]string {
	var out [][]string
	for _, m := range laneRow.FindAllStringSubmatch(dom, -1) {
		var owners []string
		for _, r := range rectOwns.FindAllStringSubmatch(m[1], -1) {
			owners = append(owners, r[1])
		}
		out = append(out, owners)
	}
	return out
}

// runsBetween reports whether a lane has a stretch whose owner starts with
// sched, with a stretch of other before and after it.
func runsBetween(lane []string, sched, other string) bool {
	seenOther, seenSched := false, false
	for _, o := range lane {
		switch {
		case o == other:
			if seenSched {
				return true
			}
			seenOther = true
		case strings.HasPrefix(o, sched):
			seenSched = seenOther
		}
	}
	return false
}
