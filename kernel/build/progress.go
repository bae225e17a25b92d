package build

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress reads the kernel make's output: it writes every line to the build
// log, and reports the phase, the elapsed time and the current target every
// interval and at each change of phase.
type progress struct {
	trim     string // a prefix of targets not worth printing: the build directory
	log      io.Writer
	report   func(format string, args ...any)
	interval time.Duration
	start    time.Time

	mu       sync.Mutex
	partial  []byte
	phase    string
	target   string
	steps    int
	last     time.Time
	problems []string // error lines, for the failure message
}

func newProgress(log io.Writer, report func(string, ...any), interval time.Duration) *progress {
	now := time.Now()
	return &progress{log: log, report: report, interval: interval, start: now, last: now}
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.log.Write(b); err != nil {
		return 0, err
	}
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

// line takes one line of make's output, e.g. "  CC      kernel/fork.o".
func (p *progress) line(line string) {
	if isProblem(line) {
		p.problems = append(p.problems, strings.TrimSpace(line))
		if len(p.problems) > 40 {
			p.problems = p.problems[len(p.problems)-40:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || !isStep(fields[0]) {
		return
	}
	p.steps++
	p.target = fields[0] + " " + strings.TrimPrefix(fields[len(fields)-1], p.trim)
	// Phases only move forward: a late host tool is still the compile.
	phase := stepPhase(fields[0], fields[len(fields)-1])
	if phaseRank[phase] < phaseRank[p.phase] {
		phase = p.phase
	}
	if phase != p.phase {
		p.phase = phase
		p.emit()
		return
	}
	if time.Since(p.last) >= p.interval {
		p.emit()
	}
}

// tick reports when nothing was printed for an interval (a long link).
func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase != "" && time.Since(p.last) >= p.interval {
		p.emit()
	}
}

func (p *progress) emit() {
	p.last = time.Now()
	p.report("build: %s %s: %s (%d steps)", fmtDuration(time.Since(p.start)), p.phase, p.target, p.steps)
}

// errorLines returns the lines of make's output that report errors.
func (p *progress) errorLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

func isProblem(line string) bool {
	return strings.Contains(line, "error:") || strings.Contains(line, "Error ") ||
		strings.HasPrefix(strings.TrimSpace(line), "***") || strings.Contains(line, "undefined reference")
}

// isStep reports whether a word is a kbuild quiet-command tag: CC, LD, AR,
// HOSTCC, BTF, KSYMS, ZSTD22...
func isStep(w string) bool {
	if len(w) < 2 || len(w) > 9 {
		return false
	}
	for _, c := range w {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return w[0] >= 'A' && w[0] <= 'Z'
}

var phaseRank = map[string]int{"": 0, "prepare": 1, "compile": 2, "link": 3, "image": 4}

// stepPhase names the build phase a step belongs to.
func stepPhase(tag, target string) string {
	switch {
	case strings.HasPrefix(tag, "HOST") || tag == "SYNC" || tag == "UPD" || tag == "GEN" || tag == "WRAP" ||
		tag == "SYSHDR" || tag == "SYSTBL" || tag == "INSTALL" || tag == "DESCEND" || tag == "MKDIR" ||
		tag == "LINK" || tag == "CHKSHA1" || tag == "COPY" || strings.Contains(target, "/tools/"):
		return "prepare"
	case strings.HasPrefix(target, "arch/x86/boot/") && !strings.HasPrefix(target, "arch/x86/boot/startup/") ||
		strings.HasPrefix(tag, "ZSTD") || tag == "BUILD" || tag == "VOFFSET" || tag == "ZOFFSET":
		return "image"
	case tag == "KSYMS" || tag == "BTF" || tag == "BTFIDS" || tag == "SORTTAB" || target == "System.map" ||
		strings.HasPrefix(target, "vmlinux") || strings.HasPrefix(target, ".tmp_vmlinux"):
		return "link"
	}
	return "compile"
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
