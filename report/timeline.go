package report

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
)

// Timeline is what a spec's events say happened when, in seconds of the
// guest's trace clock. In a run with timelines the agent puts trace_pipe on
// the kernel log's clock ("global"), so kernel log lines, fixture trace
// lines and context switches share one axis.
type Timeline struct {
	Start, End float64
	// Begin is where the spec began (the harness's marker), or Start.
	Begin float64
	// Switches is true when the timeline tracer's lines are there: the
	// CPU lanes are drawn from them.
	Switches bool
	CPUs     []Lane
	Owners   []Owner
	Marks    []Mark
	SubDisp  []SubDispatch
	Events   []ExtEvent
	// Notes say what the timeline lacks.
	Notes []string
}

// Lane is one vCPU: what ran on it, switch by switch.
type Lane struct {
	CPU  int
	Segs []Seg
}

// Seg is a stretch of a CPU during which tasks of one owner ran.
type Seg struct {
	Start, End float64
	Owner      int    // index into Timeline.Owners
	Task       string // comm-tgid of the task switched to
}

// Owner is what a lane shows: a sched_ext scheduler owning the running
// task, or the task's scheduling class when it is not on sched_ext.
type Owner struct {
	// Key identifies it in the DOM: sched:<name>@<cgroup id> or
	// class:<fair|idle|rt|dl|stop|unknown>.
	Key   string
	Label string
	// Sched, CgroupID and Level describe a scheduler (Level 0 the root).
	Sched    string
	CgroupID uint64
	Level    int
	// Path is the scheduler's cgroup, when a sub_attach line said it.
	Path string
	// Color is the index of its color in the page's palette.
	Color int
}

// MarkKind says what a mark is.
type MarkKind string

// Mark kinds.
const (
	MarkAttach   MarkKind = "attach"   // a scheduler was enabled (kernel log)
	MarkDetach   MarkKind = "detach"   // disabled, not an error exit (kernel log)
	MarkExit     MarkKind = "exit"     // disabled by an error exit (kernel log)
	MarkCallback MarkKind = "callback" // a fixture's ops.init/exit/sub_attach/sub_detach (its trace line)
	MarkDump     MarkKind = "dump"     // the kernel's debug dump began
	MarkLog      MarkKind = "log"      // any other kernel log line
)

// Mark is one event at one time.
type Mark struct {
	Time float64
	// Stamp is the time as its source printed it (the kernel log's
	// "%12.6f"), so that a reader can find the line.
	Stamp string
	Kind  MarkKind
	// Sched names the scheduler it is about, if any; Level is a kernel
	// log line's level.
	Sched string
	Level int
	Text  string
}

// SubDispatch is the timeline tracer's count of scx_bpf_sub_dispatch()
// calls for one target in one 10 ms bucket of one CPU.
type SubDispatch struct {
	First, Last float64
	CPU         int
	Target      uint64
	// True and False count the calls by what they returned (false is no
	// error: a child with nothing to run returns it too).
	True, False int
}

// ExtEvent is the timeline tracer's count of one kernel event counter
// (the sched_ext_event tracepoint: SCX_EV_...) in one 10 ms bucket of one
// CPU.
type ExtEvent struct {
	First, Last float64
	CPU         int
	Name        string
	// Count is how many times it was counted, Delta the sum it added.
	Count int
	Delta int64
}

var schedLog = regexp.MustCompile(`^sched_ext: BPF (?:sub-)?scheduler "([^"]+)" (enabled|disabled(?: \((.*)\))?)`)

// buildTimeline puts a spec's events on one axis; nil when it has none.
func buildTimeline(s *Spec, trace, timeline []string) *Timeline {
	t := &Timeline{}
	var tl []results.TraceLine
	begin, end := -1.0, -1.0
	lost := 0
	for _, raw := range append(append([]string(nil), timeline...), trace...) {
		l, ok := results.ParseTraceLine(raw)
		if !ok {
			if strings.Contains(raw, "LOST") && strings.Contains(raw, "EVENTS") {
				lost++
			}
			continue
		}
		if l.Event == "tracing_mark_write" && strings.HasPrefix(l.Payload, proto.TimelineMarker) {
			switch strings.TrimSpace(strings.TrimPrefix(l.Payload, proto.TimelineMarker)) {
			case "begin":
				begin = l.Time
			case "end":
				end = l.Time
			}
			continue
		}
		tl = append(tl, l)
	}
	if lost > 0 {
		t.Notes = append(t.Notes, fmt.Sprintf("trace_pipe lost events %d times: lanes may be wrong there", lost))
	}
	if begin >= 0 {
		// Lines from before the spec began can arrive after the harness
		// last emptied its buffer.
		kept := tl[:0]
		for _, l := range tl {
			if l.Time >= begin {
				kept = append(kept, l)
			}
		}
		tl = kept
	}
	sort.SliceStable(tl, func(i, j int) bool { return tl[i].Time < tl[j].Time })

	paths := map[uint64]string{1: "/"}
	type sw struct {
		time        float64
		cpu         int
		owner, tgid string
		comm        string
		o           Owner
	}
	var sws []sw
	for _, l := range tl {
		switch {
		case l.Event == "bpf_trace_printk" && strings.HasPrefix(l.Payload, "scxtl sw "):
			f := strings.SplitN(strings.TrimPrefix(l.Payload, "scxtl sw "), " ", 7)
			if len(f) < 7 {
				continue
			}
			o := switchOwner(f[2], f[3], f[4], f[5])
			sws = append(sws, sw{time: l.Time, cpu: l.CPU, owner: o.Key, tgid: f[1], comm: f[6], o: o})
		case l.Event == "bpf_trace_printk" && strings.HasPrefix(l.Payload, "scxtl idle "):
			// "<cpu> <age ns>": an idle stretch said once it lasted, maybe
			// by another CPU.
			f := strings.Fields(strings.TrimPrefix(l.Payload, "scxtl idle "))
			if len(f) < 2 {
				continue
			}
			cpu, _ := strconv.Atoi(f[0])
			age, _ := strconv.ParseFloat(f[1], 64)
			o := Owner{Key: "class:idle", Level: -1}
			sws = append(sws, sw{time: l.Time - age/1e9, cpu: cpu, owner: o.Key, tgid: "0", comm: "idle", o: o})
		case l.Event == "bpf_trace_printk" && strings.HasPrefix(l.Payload, "scxtl ev "):
			// "<count> <sum of delta> <age first> <age last> <name>"
			f := strings.Fields(strings.TrimPrefix(l.Payload, "scxtl ev "))
			if len(f) < 5 {
				continue
			}
			e := ExtEvent{CPU: l.CPU, Name: f[4]}
			e.Count, _ = strconv.Atoi(f[0])
			e.Delta, _ = strconv.ParseInt(f[1], 10, 64)
			first, _ := strconv.ParseFloat(f[2], 64)
			last, _ := strconv.ParseFloat(f[3], 64)
			e.First, e.Last = l.Time-first/1e9, l.Time-last/1e9
			t.Events = append(t.Events, e)
		case l.Event == "bpf_trace_printk" && strings.HasPrefix(l.Payload, "scxtl sd "):
			f := strings.Fields(strings.TrimPrefix(l.Payload, "scxtl sd "))
			if len(f) < 5 {
				continue
			}
			d := SubDispatch{CPU: l.CPU}
			d.Target, _ = strconv.ParseUint(f[0], 10, 64)
			d.True, _ = strconv.Atoi(f[1])
			d.False, _ = strconv.Atoi(f[2])
			first, _ := strconv.ParseFloat(f[3], 64)
			last, _ := strconv.ParseFloat(f[4], 64)
			d.First, d.Last = l.Time-first/1e9, l.Time-last/1e9
			t.SubDisp = append(t.SubDisp, d)
		case l.Event == "sched_ext_dump":
			if len(t.Marks) == 0 || t.Marks[len(t.Marks)-1].Kind != MarkDump {
				t.Marks = append(t.Marks, Mark{Time: l.Time, Stamp: stamp(l.Time), Kind: MarkDump, Text: "the kernel's debug dump (dump.txt)"})
			}
		case l.Event == "bpf_trace_printk":
			ev, ok := l.Fixture()
			if !ok {
				continue
			}
			switch ev.Event {
			case "init", "exit", "sub_attach", "sub_detach":
				t.Marks = append(t.Marks, Mark{Time: l.Time, Stamp: stamp(l.Time), Kind: MarkCallback, Sched: ev.Fixture,
					Text: strings.TrimPrefix(l.Payload, results.TracePrefix)})
			}
			if ev.Event == "sub_attach" {
				if id, err := strconv.ParseUint(ev.Field("cgid"), 10, 64); err == nil && ev.Field("path") != "" {
					paths[id] = ev.Field("path")
				}
			}
		}
	}
	exits := map[string]Sched{}
	for _, sc := range s.Schedulers {
		exits[sc.Name] = sc
	}
	for _, k := range s.Kmsg {
		m := Mark{Time: k.Time, Stamp: k.Stamp, Kind: MarkLog, Level: k.Level, Text: k.Text}
		if g := schedLog.FindStringSubmatch(k.Text); g != nil {
			m.Sched = g[1]
			switch {
			case g[2] == "enabled":
				m.Kind = MarkAttach
			case errorExit(exits[g[1]], k.Level):
				m.Kind = MarkExit
			default:
				m.Kind = MarkDetach
			}
			if e := exits[g[1]].Exit; e != nil && m.Kind != MarkAttach {
				m.Text += " · " + e.String()
			}
		}
		t.Marks = append(t.Marks, m)
	}
	sort.SliceStable(t.Marks, func(i, j int) bool { return t.Marks[i].Time < t.Marks[j].Time })

	// The window: the spec's markers, widened to every event of the spec.
	lo, hi := begin, end
	widen := func(x float64) {
		if lo < 0 || x < lo {
			lo = x
		}
		if hi < 0 || x > hi {
			hi = x
		}
	}
	for _, m := range t.Marks {
		widen(m.Time)
	}
	for _, l := range tl {
		widen(l.Time)
	}
	if lo < 0 || hi <= lo {
		if len(t.Marks) == 0 && len(sws) == 0 {
			return nil
		}
		hi = lo + 1
	}
	t.Start, t.End, t.Begin = lo, hi, lo
	if begin >= 0 {
		t.Begin = begin
	}

	// Owners, in the order of the legend: schedulers by level, then the
	// classes.
	byKey := map[string]int{}
	for _, x := range sws {
		if _, ok := byKey[x.owner]; !ok {
			byKey[x.owner] = len(t.Owners)
			t.Owners = append(t.Owners, x.o)
		}
	}
	for i := range t.Owners {
		if p, ok := paths[t.Owners[i].CgroupID]; ok && t.Owners[i].Sched != "" {
			t.Owners[i].Path = p
		}
		t.Owners[i].Label = t.Owners[i].label()
	}
	order := make([]int, len(t.Owners))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ownerLess(t.Owners[order[a]], t.Owners[order[b]]) })
	sorted := make([]Owner, len(order))
	remap := make([]int, len(order))
	for newi, oldi := range order {
		sorted[newi] = t.Owners[oldi]
		remap[oldi] = newi
	}
	t.Owners = sorted
	colors(t.Owners)

	// Lanes: a switch starts a segment that lasts until the next switch
	// on that CPU (in the order they began: an idle line comes late).
	sort.SliceStable(sws, func(i, j int) bool { return sws[i].time < sws[j].time })
	cpus := map[int]*Lane{}
	var ids []int
	for _, x := range sws {
		ln := cpus[x.cpu]
		if ln == nil {
			ln = &Lane{CPU: x.cpu}
			cpus[x.cpu] = ln
			ids = append(ids, x.cpu)
		}
		if n := len(ln.Segs); n > 0 {
			ln.Segs[n-1].End = x.time
		}
		ln.Segs = append(ln.Segs, Seg{Start: x.time, End: t.End, Owner: remap[byKey[x.owner]], Task: x.comm + "-" + x.tgid})
	}
	sort.Ints(ids)
	for _, id := range ids {
		t.CPUs = append(t.CPUs, *cpus[id])
	}
	t.Switches = len(sws) > 0
	if !t.Switches {
		t.Notes = append(t.Notes, "no context switches: the run did not collect timelines (scxcheck run --report or --timeline), so there are no CPU lanes")
	}
	return t
}

func stamp(t float64) string { return strconv.FormatFloat(t, 'f', 6, 64) }

// errorExit reports whether a scheduler's disable was an error exit: its
// exit kind says so, or the kernel logged it as an error.
func errorExit(s Sched, level int) bool {
	if s.Exit != nil {
		return strings.Contains(s.Exit.KindName, "ERROR")
	}
	return level <= 3
}

var classNames = map[string]string{"1": "stop", "2": "dl", "3": "rt", "4": "fair", "5": "ext", "6": "idle"}

// switchOwner reads the owner fields of a switch line.
func switchOwner(class, cgid, level, name string) Owner {
	cls := classNames[class]
	if cls == "ext" && name != "-" {
		o := Owner{Sched: name}
		o.CgroupID, _ = strconv.ParseUint(cgid, 10, 64)
		o.Level, _ = strconv.Atoi(level)
		o.Key = fmt.Sprintf("sched:%s@%d", name, o.CgroupID)
		return o
	}
	if cls == "" || cls == "ext" {
		cls = "unknown"
	}
	return Owner{Key: "class:" + cls, Level: -1}
}

// short is the owner's name in hover texts.
func (o Owner) short() string {
	if o.Sched != "" {
		return o.Sched
	}
	return strings.TrimPrefix(o.Key, "class:")
}

func (o Owner) label() string {
	switch {
	case o.Sched != "" && o.Level == 0:
		return o.Sched + " (root)"
	case o.Sched != "" && o.Path != "":
		return fmt.Sprintf("%s (cgroup %s)", o.Sched, o.Path)
	case o.Sched != "":
		return fmt.Sprintf("%s (cgroup id %d)", o.Sched, o.CgroupID)
	}
	return map[string]string{"class:fair": "fair class (not sched_ext)", "class:idle": "idle", "class:rt": "rt class",
		"class:dl": "deadline class", "class:stop": "stop class", "class:unknown": "class not known"}[o.Key]
}

var classOrder = map[string]int{"class:fair": 0, "class:rt": 1, "class:dl": 2, "class:stop": 3, "class:unknown": 4, "class:idle": 5}

func ownerLess(a, b Owner) bool {
	if (a.Sched != "") != (b.Sched != "") {
		return a.Sched != ""
	}
	if a.Sched != "" {
		if a.Level != b.Level {
			return a.Level < b.Level
		}
		return a.Path+a.Sched < b.Path+b.Sched
	}
	return classOrder[a.Key] < classOrder[b.Key]
}

// The palette has schedColors colors for schedulers (the CSS classes o0..),
// then the classes' own.
const schedColors = 8

var classColor = map[string]int{"class:fair": 8, "class:rt": 9, "class:dl": 12, "class:stop": 13, "class:unknown": 10, "class:idle": 11}

func colors(owners []Owner) {
	n := 0
	for i := range owners {
		if owners[i].Sched != "" {
			owners[i].Color = n % schedColors
			n++
		} else {
			owners[i].Color = classColor[owners[i].Key]
		}
	}
}
