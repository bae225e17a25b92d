package report

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
)

// The layout of a timeline's SVG: plotW pixels of time right of a gutter
// for the row names; bucket pixels are the finest unit drawn, so that a
// long spec stays as small as a short one (what is shorter than a bucket
// is drawn as a bucket, with its shares in the hover text).
const (
	gutter = 118
	plotW  = 1000
	bucket = 3.0
	// markBucket is the width of a bucket in the rows of marks.
	markBucket = 5.0
	laneH      = 22
	rowH       = 18
	axisH      = 20
	padTop     = 6
	maxText    = 6 // kernel log lines in a hover text
)

// svgView is what the template draws.
type svgView struct {
	ID            string
	Width, Height int
	// PlotX and PlotW place the time axis; T0 is its left end, Scale
	// seconds per pixel, Begin the spec's beginning (time 0 on the axis).
	PlotX, PlotW int
	T0, Scale    float64
	Begin        float64
	Ticks        []tick
	Rows         []row
	Lines        []vline
}

type tick struct {
	X     float64
	Label string
}

// row is a lane (Kind "cpu") or a row of marks.
type row struct {
	Kind, Label string
	Y, H        int
	Boxes       []box
}

// box is a rect: a stretch of a lane or a bucket of marks.
type box struct {
	X, W, Y, H float64
	Class      string
	// Owner is the lane owner's key (data-owner), Kind/Sched/Stamp a
	// mark's (data-kind, data-sched, data-time).
	Owner, Kind, Sched, Stamp string
	Opacity                   float64
	Title                     string
}

// vline is a line across the lanes at an exit or attach.
type vline struct {
	X     float64
	Class string
}

// layout draws the timeline between from and to (seconds of its clock).
func (t *Timeline) layout(id string, from, to float64) svgView {
	v := svgView{ID: id, PlotX: gutter, PlotW: plotW, T0: from, Scale: (to - from) / plotW, Begin: t.Begin}
	if v.Scale <= 0 {
		v.Scale = 1e-3
	}
	y := padTop + axisH
	for _, ln := range t.CPUs {
		r := row{Kind: "cpu", Label: fmt.Sprintf("CPU %d", ln.CPU), Y: y, H: laneH}
		r.Boxes = t.laneBoxes(ln, &v, y, to)
		v.Rows = append(v.Rows, r)
		y += laneH + 2
	}
	y += 4
	for _, r := range []row{
		t.schedRow(&v, y),
		t.subDispRow(&v, y+rowH+2),
		t.eventRow(&v, y+2*(rowH+2)),
		t.logRow(&v, y+3*(rowH+2)),
	} {
		v.Rows = append(v.Rows, r)
	}
	y += 4 * (rowH + 2)
	v.Height = y + 4
	v.Width = gutter + plotW + 8
	for _, m := range t.Marks {
		if x, ok := v.x(m.Time); ok && (m.Kind == MarkExit || m.Kind == MarkAttach || m.Kind == MarkDetach) {
			v.Lines = append(v.Lines, vline{X: x, Class: "vl-" + string(m.Kind)})
		}
	}
	v.Ticks = ticks(&v, from, to)
	return v
}

// x is a time's position, and whether it is in the view.
func (v *svgView) x(t float64) (float64, bool) {
	x := (t - v.T0) / v.Scale
	return float64(v.PlotX) + x, x >= -0.5 && x <= float64(v.PlotW)+0.5
}

// rel is a time relative to the spec's beginning, for hover texts.
func (v *svgView) rel(t float64) string { return fmt.Sprintf("%.3f", t-v.Begin) }

// span is a stretch of time for hover texts.
func (v *svgView) span(from, to float64) string { return v.rel(from) + "–" + v.rel(to) + " s" }

// laneBoxes turns a CPU's segments into boxes: runs of one owner wider than
// a bucket as they are, shorter ones gathered into buckets drawn in the
// color of the owner that had most of the bucket's time (paler the less it
// had), a bucket merged into the box before it when that box has the same
// owner or the bucket is narrower. Idle time is the lane's background.
func (t *Timeline) laneBoxes(ln Lane, v *svgView, y int, to float64) []box {
	type acc struct {
		from, to float64
		owners   map[int]float64
		tasks    map[string]float64
	}
	minDur := bucket * v.Scale
	var accs []*acc
	add := func(a *acc) {
		if a == nil {
			return
		}
		if n := len(accs); n > 0 {
			p := accs[n-1]
			if p.to == a.from && (dominant(p.owners) == dominant(a.owners) || a.to-a.from < minDur) {
				p.to = a.to
				for k, d := range a.owners {
					p.owners[k] += d
				}
				for k, d := range a.tasks {
					p.tasks[k] += d
				}
				return
			}
		}
		accs = append(accs, a)
	}
	var pend *acc
	for _, s := range mergeSegs(ln.Segs) {
		a, b := math.Max(s.Start, v.T0), math.Min(s.End, to)
		if b <= a {
			continue
		}
		if b-a >= minDur {
			add(pend)
			pend = nil
			add(&acc{from: a, to: b, owners: map[int]float64{s.Owner: b - a}, tasks: s.tasks})
			continue
		}
		if pend == nil {
			pend = &acc{from: a, owners: map[int]float64{}, tasks: map[string]float64{}}
		}
		pend.to = b
		pend.owners[s.Owner] += b - a
		for k, d := range s.tasks {
			pend.tasks[k] += d
		}
		if pend.to-pend.from >= minDur {
			add(pend)
			pend = nil
		}
	}
	add(pend)
	var out []box
	for _, a := range accs {
		if t.Owners[dominant(a.owners)].Key == "class:idle" {
			continue
		}
		out = append(out, t.ownerBox(v, y, a.from, a.to, a.owners, a.tasks))
	}
	return out
}

// merged is a run of segments of one owner.
type merged struct {
	Start, End float64
	Owner      int
	tasks      map[string]float64
}

func mergeSegs(segs []Seg) []merged {
	var out []merged
	for _, s := range segs {
		if n := len(out); n > 0 && out[n-1].Owner == s.Owner && out[n-1].End == s.Start {
			out[n-1].End = s.End
			out[n-1].tasks[s.Task] += s.End - s.Start
			continue
		}
		out = append(out, merged{Start: s.Start, End: s.End, Owner: s.Owner, tasks: map[string]float64{s.Task: s.End - s.Start}})
	}
	return out
}

// dominant is the owner with most of the time, the lowest on a tie.
func dominant(owners map[int]float64) int {
	dom := -1
	for o, d := range owners {
		if dom < 0 || d > owners[dom] || (d == owners[dom] && o < dom) {
			dom = o
		}
	}
	return dom
}

func (t *Timeline) ownerBox(v *svgView, y int, from, to float64, owners map[int]float64, tasks map[string]float64) box {
	dom, total := dominant(owners), 0.0
	for _, d := range owners {
		total += d
	}
	x0, _ := v.x(from)
	x1, _ := v.x(to)
	o := t.Owners[dom]
	b := box{X: x0, W: math.Max(x1-x0, 0.5), Y: float64(y), H: laneH, Class: fmt.Sprintf("o%d", o.Color), Owner: o.Key, Opacity: 1}
	var who []string
	if len(owners) > 1 {
		b.Class += " mix"
		b.Opacity = 0.45 + 0.55*owners[dom]/total
		for _, k := range topKeys(owners, 3) {
			who = append(who, fmt.Sprintf("%s %.0f%%", t.Owners[k].short(), 100*owners[k]/total))
		}
	} else {
		who = []string{o.short()}
	}
	var ts []string
	ttotal := 0.0
	for _, d := range tasks {
		ttotal += d
	}
	for _, k := range topKeys(tasks, 2) {
		ts = append(ts, fmt.Sprintf("%s %.0f%%", k, 100*tasks[k]/ttotal))
	}
	b.Title = fmt.Sprintf("%s %s; %s", v.span(from, to), strings.Join(who, " "), strings.Join(ts, " "))
	return b
}

// topKeys returns the n keys with the largest values, largest first.
func topKeys[K comparable](m map[K]float64, n int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j])
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// schedRow draws each scheduler event as it is: they are few.
func (t *Timeline) schedRow(v *svgView, y int) row {
	r := row{Kind: "sched", Label: "schedulers", Y: y, H: rowH}
	for _, m := range t.Marks {
		if m.Kind == MarkLog {
			continue
		}
		x, ok := v.x(m.Time)
		if !ok {
			continue
		}
		w := 5.0
		r.Boxes = append(r.Boxes, box{X: x - w/2, W: w, Y: float64(y + 2), H: rowH - 4, Class: "m-" + string(m.Kind),
			Kind: string(m.Kind), Sched: m.Sched, Stamp: m.Stamp, Opacity: 1,
			Title: fmt.Sprintf("%s s [%s] %s", v.rel(m.Time), m.Stamp, m.Text)})
	}
	return r
}

// bucketOf is the index of a time's bucket in a row of marks.
func (v *svgView) bucketOf(t float64) (int, bool) {
	x, ok := v.x(t)
	if !ok {
		return 0, false
	}
	return int((x - float64(v.PlotX)) / markBucket), true
}

func (v *svgView) bucketBox(i, y int, h float64) box {
	return box{X: float64(v.PlotX) + float64(i)*markBucket, W: markBucket - 0.5, Y: float64(y+rowH) - h, H: h, Opacity: 1}
}

// barH is a bar's height for a count: logarithmic, so that one call shows.
func barH(n int) float64 { return math.Min(rowH-2, 4+3*math.Log2(float64(n))) }

func (t *Timeline) subDispRow(v *svgView, y int) row {
	r := row{Kind: "subdisp", Label: "sub-dispatch", Y: y, H: rowH}
	type cnt struct{ t, f int }
	byBucket := map[int]map[uint64]*cnt{}
	for _, d := range t.SubDisp {
		i, ok := v.bucketOf((d.First + d.Last) / 2)
		if !ok {
			continue
		}
		if byBucket[i] == nil {
			byBucket[i] = map[uint64]*cnt{}
		}
		c := byBucket[i][d.Target]
		if c == nil {
			c = &cnt{}
			byBucket[i][d.Target] = c
		}
		c.t += d.True
		c.f += d.False
	}
	for _, i := range slices.Sorted(maps.Keys(byBucket)) {
		var parts []string
		total, most := 0, 0
		class := "sd"
		var targets []uint64
		for tg := range byBucket[i] {
			targets = append(targets, tg)
		}
		sort.Slice(targets, func(a, b int) bool { return targets[a] < targets[b] })
		for _, tg := range targets {
			c := byBucket[i][tg]
			total += c.t + c.f
			if n := c.t + c.f; n > most {
				most, class = n, "sd"
				if o, ok := t.targetOwner(tg); ok {
					class = fmt.Sprintf("o%d", o.Color)
				}
			}
			parts = append(parts, fmt.Sprintf("→%s %d true %d false", t.targetName(tg), c.t, c.f))
		}
		b := v.bucketBox(i, y, barH(total))
		b.Class, b.Kind = class, "subdispatch"
		from := v.T0 + float64(i)*markBucket*v.Scale
		b.Title = fmt.Sprintf("%s: %d sub-dispatches %s", v.span(from, from+markBucket*v.Scale), total, strings.Join(parts, ", "))
		r.Boxes = append(r.Boxes, b)
	}
	return r
}

// targetOwner is the scheduler on a cgroup, if it ran tasks.
func (t *Timeline) targetOwner(cgid uint64) (Owner, bool) {
	for _, o := range t.Owners {
		if o.Sched != "" && o.CgroupID == cgid {
			return o, true
		}
	}
	return Owner{}, false
}

// targetName names a sub-dispatch target by the scheduler on its cgroup.
func (t *Timeline) targetName(cgid uint64) string {
	if o, ok := t.targetOwner(cgid); ok {
		return o.Sched
	}
	if cgid == 0 {
		return "other cgroups"
	}
	return fmt.Sprintf("cgroup id %d", cgid)
}

func (t *Timeline) eventRow(v *svgView, y int) row {
	r := row{Kind: "events", Label: "sched_ext events", Y: y, H: rowH}
	byBucket := map[int]map[string]int{}
	for _, e := range t.Events {
		i, ok := v.bucketOf((e.First + e.Last) / 2)
		if !ok {
			continue
		}
		if byBucket[i] == nil {
			byBucket[i] = map[string]int{}
		}
		byBucket[i][e.Name] += e.Count
	}
	for _, i := range slices.Sorted(maps.Keys(byBucket)) {
		var parts []string
		total := 0
		names := make([]string, 0, len(byBucket[i]))
		for n := range byBucket[i] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			total += byBucket[i][n]
			parts = append(parts, fmt.Sprintf("%s ×%d", n, byBucket[i][n]))
		}
		b := v.bucketBox(i, y, barH(total))
		b.Class, b.Kind = "ev", "event"
		from := v.T0 + float64(i)*markBucket*v.Scale
		b.Title = fmt.Sprintf("%s: %s", v.span(from, from+markBucket*v.Scale), strings.Join(parts, ", "))
		r.Boxes = append(r.Boxes, b)
	}
	return r
}

func (t *Timeline) logRow(v *svgView, y int) row {
	r := row{Kind: "log", Label: "kernel log", Y: y, H: rowH}
	byBucket := map[int][]Mark{}
	for _, m := range t.Marks {
		if m.Kind == MarkDump || m.Kind == MarkCallback {
			continue
		}
		if i, ok := v.bucketOf(m.Time); ok {
			byBucket[i] = append(byBucket[i], m)
		}
	}
	for _, i := range slices.Sorted(maps.Keys(byBucket)) {
		ms := byBucket[i]
		worst := 7
		var lines []string
		for j, m := range ms {
			worst = min(worst, m.Level)
			if j < maxText {
				lines = append(lines, fmt.Sprintf("[%s] %s", m.Stamp, m.Text))
			}
		}
		if len(ms) > maxText {
			lines = append(lines, fmt.Sprintf("… %d more", len(ms)-maxText))
		}
		b := v.bucketBox(i, y, barH(len(ms)))
		b.Kind = "log"
		switch {
		case worst <= 3:
			b.Class = "lg lge"
		case worst == 4:
			b.Class = "lg lgw"
		default:
			b.Class = "lg"
		}
		b.Stamp = ms[0].Stamp
		b.Title = strings.Join(lines, "\n")
		r.Boxes = append(r.Boxes, b)
	}
	return r
}

// tickCharW is more than the width of a character of a tick's label (11px
// sans-serif digits).
const tickCharW = 7

// ticks puts 6 to 12 round times on the axis, relative to the spec's
// beginning.
func ticks(v *svgView, from, to float64) []tick {
	span := to - from
	step := math.Pow(10, math.Floor(math.Log10(span/6)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 12 {
			step *= m
			break
		}
	}
	var out []tick
	first := math.Ceil((from-v.Begin)/step) * step
	for rel := first; v.Begin+rel <= to; rel += step {
		x, ok := v.x(v.Begin + rel)
		label := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", rel), "0"), ".") + " s"
		if !ok || x+tickCharW*float64(len(label)) > float64(v.Width) {
			continue // outside, or its label would be cut at the right edge
		}
		out = append(out, tick{X: x, Label: label})
	}
	return out
}
