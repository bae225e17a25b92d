package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/scxcheck/scxcheck/outcome"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/proto"
	"github.com/scxcheck/scxcheck/results"
	"github.com/scxcheck/scxcheck/vm"
)

// Per-spec artifacts. With Options.Artifacts set, every spec that ran gets a
// directory <artifacts>/<slug>/ holding what its VM produced while it ran:
//
//	console.log  the serial console lines of the spec
//	trace.txt    trace_pipe lines (fixture bpf_printk and sched_ext tracepoints)
//	kmsg.txt     kernel log records, with the guest's timestamps
//	dump.txt     sched_ext_dump payloads (the kernel's debug dump on error exits)
//	timeline.txt.gz  with Options.Timeline, the spec's timeline events (timeline.go)
//	exits.json   the exit info of every scheduler the spec loaded
//	spec.json    the spec's outcome (SpecRecord), written last
//
// Exit info is read by the call after the spec, before the reset frees the
// schedulers; the files are written once the spec is over (ReportAfterEach),
// so that a kernel fault's report has settled on the console, which stays
// readable after the VM is replaced. Options.OnSpec
// receives each SpecRecord (the CLI writes a reproduction bundle for a
// failing spec from it).

// SpecRecord is what a run keeps of one spec.
type SpecRecord struct {
	Text   string   `json:"text"` // Ginkgo's full text
	Labels []string `json:"labels,omitempty"`
	Slug   string   `json:"slug"`
	// State is Ginkgo's: passed, skipped, failed, panicked, timedout, ...
	State string `json:"state"`
	// Class says what kind of failure it was (outcome.Of).
	Class    outcome.Class `json:"class,omitempty"`
	Failure  string        `json:"failure,omitempty"`
	Location string        `json:"location,omitempty"` // file:line of the failure
	RunTime  float64       `json:"runtime_s"`
	// Dir is the spec's artifacts directory; "" without Options.Artifacts.
	Dir string `json:"dir,omitempty"`
	// Kernel is the image booted; QEMU the command line of the VM the spec
	// ran in (nil if none was up).
	Kernel string   `json:"kernel"`
	QEMU   []string `json:"qemu,omitempty"`
	// Schedulers lists the schedulers the spec loaded, with their exits.
	Schedulers []SchedExit `json:"schedulers,omitempty"`
}

// Failed reports whether the spec failed.
func (r SpecRecord) Failed() bool { return r.Class != "" && r.Class != outcome.None }

// SchedExit is one entry of exits.json.
type SchedExit struct {
	Name     string          `json:"name"`
	Fixture  string          `json:"fixture"`
	ID       int             `json:"id"`
	CgroupID uint64          `json:"cgroup_id,omitempty"`
	Exit     *proto.ExitInfo `json:"exit,omitempty"` // nil if it could not be read
	Err      string          `json:"error,omitempty"`
}

// specCapture is the running spec's state, reset by beginSpec.
type specCapture struct {
	begun   bool
	console *os.File // the VM's console log, open from the start of the spec
	offset  int64    // its size then
	scheds  []SchedExit
	qemu    []string
}

// beginSpec is called by the suite-wide BeforeEach once the VM is up. It
// keeps the console log open: closing the VM removes the file, and the
// spec's lines are read after that, once a fault has settled.
func (h *Harness) beginSpec() {
	h.endSpec()
	h.spec.begun = true
	if h.guest == nil {
		return
	}
	if f, err := os.Open(h.guest.ConsoleLog()); err == nil {
		h.spec.console = f
		h.spec.offset, _ = f.Seek(0, io.SeekEnd)
	}
	h.spec.qemu = h.guest.QEMUCommand()
}

func (h *Harness) endSpec() {
	if h.spec.console != nil {
		h.spec.console.Close()
	}
	h.spec = specCapture{}
}

// trackSched records a scheduler the spec loaded, for exits.json.
func (h *Harness) trackSched(s *Sched, fixture string) {
	h.spec.scheds = append(h.spec.scheds, SchedExit{Name: s.Name, Fixture: fixture, ID: s.ID, CgroupID: s.CgroupID})
}

// specSchedIDs are the agent's ids of the schedulers the spec loaded.
func (h *Harness) specSchedIDs() []int {
	ids := make([]int, 0, len(h.spec.scheds))
	for _, s := range h.spec.scheds {
		ids = append(ids, s.ID)
	}
	return ids
}

// keepExits records the exits read after the spec, before the reset freed
// the schedulers.
func (h *Harness) keepExits(exits []proto.ExitOrError) {
	for _, e := range exits {
		for i := range h.spec.scheds {
			if h.spec.scheds[i].ID == e.ID {
				h.spec.scheds[i].Exit, h.spec.scheds[i].Err = e.Exit, e.Err
			}
		}
	}
}

// noExits records why the exits could not be read.
func (h *Harness) noExits(why string) {
	for i := range h.spec.scheds {
		if h.spec.scheds[i].Exit == nil && h.spec.scheds[i].Err == "" {
			h.spec.scheds[i].Err = why
		}
	}
}

// writeSpecArtifacts writes the spec's files into dir.
func (h *Harness) writeSpecArtifacts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write spec artifacts: %w", err)
	}
	var errs []error
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	exits, _ := json.MarshalIndent(h.spec.scheds, "", "  ")
	write("exits.json", append(exits, '\n'))
	if !h.spec.begun || h.guest == nil {
		return errors.Join(errs...)
	}
	if h.spec.console != nil {
		b, _ := io.ReadAll(io.NewSectionReader(h.spec.console, h.spec.offset, 1<<40))
		write("console.log", b)
	}
	evs := h.guest.Events().Since(h.guest.specMark)
	var trace, kmsg strings.Builder
	for _, ev := range evs {
		switch ev.Kind {
		case proto.EventTrace:
			trace.WriteString(ev.Line + "\n")
		case proto.EventKmsg:
			fmt.Fprintf(&kmsg, "[%12.6f] <%d> %s\n", ev.Time, ev.Level, ev.Line)
		}
	}
	write("trace.txt", []byte(trace.String()))
	write("kmsg.txt", []byte(kmsg.String()))
	write("dump.txt", []byte(joinLines(results.DumpLines(evs))))
	if err := h.writeTimeline(dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("write spec artifacts in %s: %w", dir, errors.Join(errs...))
	}
	return nil
}

// report is the ReportAfterEach of every spec: it counts the spec, writes
// its artifacts and hands its record to Options.OnSpec.
func (h *Harness) report(r SpecReport) {
	if !h.running || r.LeafNodeType != types.NodeTypeIt {
		return
	}
	if r.State == types.SpecStateSkipped && r.Failure.Message == "" {
		return // not selected by the label filter or focus: not run, not a skip
	}
	h.count(r)
	rec := SpecRecord{
		Text:       r.FullText(),
		Labels:     r.Labels(),
		Slug:       Slug(r.FullText()),
		State:      r.State.String(),
		RunTime:    r.RunTime.Seconds(),
		Kernel:     h.opts.Kernel,
		QEMU:       h.spec.qemu,
		Schedulers: h.spec.scheds,
	}
	if r.State.Is(types.SpecStateFailureStates) {
		rec.Failure = r.Failure.Message
		rec.Location = r.Failure.Location.String()
		rec.Class = outcome.Of(r)
	} else if r.State == types.SpecStateSkipped {
		rec.Failure = strings.TrimSpace(r.Failure.Message)
	}
	if h.opts.Artifacts != "" {
		rec.Dir = filepath.Join(h.opts.Artifacts, Slug(r.FullText()))
		if err := h.writeSpecArtifacts(rec.Dir); err != nil {
			h.Log("%v", err)
		}
		b, _ := json.MarshalIndent(rec, "", "  ")
		if err := os.WriteFile(filepath.Join(rec.Dir, "spec.json"), append(b, '\n'), 0o644); err != nil {
			h.Log("write spec artifacts: %v", err)
		}
	}
	if h.opts.OnSpec != nil {
		h.opts.OnSpec(rec)
	}
	h.endSpec()
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// Slug names a spec's artifacts directory: its text in lower case with
// runs of other characters as '-', at most 80 characters, and 6 hex digits
// of its hash, so that two specs never share a directory.
func Slug(text string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(text), "-"), "-")
	if len(s) > 80 {
		s = strings.TrimRight(s[:80], "-")
	}
	h := sha256.Sum256([]byte(text))
	return s + "-" + hex.EncodeToString(h[:3])
}

func joinLines(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// writeMachineArtifacts saves a whole VM's console and event stream into
// the artifacts directory.
func writeMachineArtifacts(dir string, m *vm.Machine, name string) error {
	if dir == "" || m == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	if b, err := os.ReadFile(m.ConsoleLog()); err == nil {
		if err := os.WriteFile(filepath.Join(dir, name+"-console.log"), b, 0o644); err != nil {
			return fmt.Errorf("write artifacts: %w", err)
		}
	}
	f, err := os.Create(filepath.Join(dir, name+"-events.jsonl"))
	if err != nil {
		return fmt.Errorf("write artifacts: %w", err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, ev := range m.Events().Since(0) {
		_ = enc.Encode(ev)
	}
	return nil
}
