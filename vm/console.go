package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// FaultKind classifies a console line that means the kernel is in trouble.
type FaultKind string

// The faults the console watcher recognises.
const (
	FaultPanic    FaultKind = "kernel panic"
	FaultOops     FaultKind = "oops"
	FaultBUG      FaultKind = "BUG"
	FaultWarning  FaultKind = "WARNING"
	FaultRCUStall FaultKind = "RCU stall"
	FaultHungTask FaultKind = "hung task"
)

var faultPatterns = []struct {
	kind FaultKind
	re   *regexp.Regexp
}{
	{FaultPanic, regexp.MustCompile(`Kernel panic - not syncing`)},
	{FaultBUG, regexp.MustCompile(`\bBUG: `)},
	{FaultOops, regexp.MustCompile(`\bOops(: | - )`)},
	{FaultWarning, regexp.MustCompile(`\bWARNING: `)},
	{FaultRCUStall, regexp.MustCompile(`rcu: INFO: .*detected stall|self-detected stall on CPU`)},
	{FaultHungTask, regexp.MustCompile(`INFO: task .* blocked for more than`)},
}

// ClassifyLine returns the fault a console line reports, if any.
func ClassifyLine(line string) (FaultKind, bool) {
	for _, p := range faultPatterns {
		if p.re.MatchString(line) {
			return p.kind, true
		}
	}
	return "", false
}

// Fault is a kernel fault seen on the serial console.
type Fault struct {
	Kind FaultKind
	// Line is the console line that was classified.
	Line string
	// Index is the line's position in the console, counting from 0.
	Index int
	// At is when the host read the line.
	At time.Time
}

// console records the serial console: every line to a file and in memory,
// and every fault line as a Fault.
type console struct {
	mu     sync.Mutex
	lines  []string
	faults []Fault
	first  chan struct{} // closed at the first line
	once   sync.Once
}

const maxConsoleLines = 50000

func newConsole() *console {
	return &console{first: make(chan struct{})}
}

// copyFrom reads r until EOF, appending to the log file out.
func (c *console) copyFrom(r io.Reader, out *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if out != nil {
			fmt.Fprintln(out, line)
		}
		c.add(line)
	}
}

func (c *console) add(line string) {
	c.once.Do(func() { close(c.first) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) >= maxConsoleLines {
		return
	}
	if kind, ok := ClassifyLine(line); ok {
		c.faults = append(c.faults, Fault{Kind: kind, Line: line, Index: len(c.lines), At: time.Now()})
	}
	c.lines = append(c.lines, line)
}

// Faults returns the faults seen so far.
func (c *console) Faults() []Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Fault(nil), c.faults...)
}

// Len is the number of lines seen so far.
func (c *console) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// Tail returns the last n lines.
func (c *console) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := max(0, len(c.lines)-n)
	return strings.Join(c.lines[start:], "\n")
}

// Excerpt returns the lines around a fault: a few before it and up to 40
// after, as far as they have arrived.
func (c *console) Excerpt(f Fault) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := max(0, f.Index-5)
	end := min(len(c.lines), f.Index+40)
	return strings.Join(c.lines[start:end], "\n")
}
