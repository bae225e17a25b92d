package harness

import (
	"context"
	"errors"
	"fmt"
	"path"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/scxcheck/scxcheck/coverage/specdata"
	"github.com/scxcheck/scxcheck/proto"
)

// Coverage makes a run keep every spec's gcov data (Options.Coverage): the
// kernel's counters are reset before each spec and read after it (after
// the reset of the guest, so that a spec's teardown is its own), and
// stored per spec with package coverage/specdata. Collecting never changes
// a spec's verdict: a reset or a read that fails is logged, and that
// spec's data is not kept.
type Coverage struct {
	// BuildDir is the directory the kernel was built in: its gcov data is
	// below proto.GcovRoot + BuildDir.
	BuildDir string
	// Dirs are the directories below BuildDir with profiled objects, e.g.
	// kernel/sched.
	Dirs []string
	// Out receives each spec's data (specdata.Write).
	Out string
}

// ErrNoGcov is wrapped by the infrastructure error of a coverage run whose
// kernel has no gcov support (no proto.GcovRoot in the guest).
var ErrNoGcov = errors.New("the kernel has no gcov support")

// gcovAgent is what collecting coverage needs of the guest's agent.
type gcovAgent interface {
	GcovReset(ctx context.Context) error
	GcovCollect(ctx context.Context, dir string) ([]proto.GcovFile, error)
}

// gcovTimeout bounds a reset or a read of the counters.
const gcovTimeout = 30 * time.Second

// specCoverage is the coverage state of the running spec.
type specCoverage struct {
	cfg *Coverage
	// reset is set once the counters were reset for the running spec:
	// without it, what the counters hold is not the spec's alone.
	reset bool
}

// checkGcov resets the counters of a freshly booted guest: a kernel
// without gcov support is an error wrapping ErrNoGcov.
func (c *specCoverage) checkGcov(ctx context.Context, a gcovAgent) error {
	if c.cfg == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, gcovTimeout)
	defer cancel()
	err := a.GcovReset(ctx)
	if errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("%w: %v", ErrNoGcov, err)
	}
	return err
}

// before resets the counters before a spec.
func (c *specCoverage) before(ctx context.Context, a gcovAgent) error {
	c.reset = false
	if c.cfg == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, gcovTimeout)
	defer cancel()
	if err := a.GcovReset(ctx); err != nil {
		return fmt.Errorf("reset gcov counters: %w", err)
	}
	c.reset = true
	return nil
}

// after reads the counters after the spec and stores them as its data. It
// does nothing unless they were reset before the spec.
func (c *specCoverage) after(ctx context.Context, a gcovAgent, spec string) error {
	if c.cfg == nil || !c.reset {
		return nil
	}
	c.reset = false
	ctx, cancel := context.WithTimeout(ctx, gcovTimeout)
	defer cancel()
	files := map[string][]byte{}
	for _, d := range c.cfg.Dirs {
		got, err := a.GcovCollect(ctx, path.Join(c.cfg.BuildDir, d))
		if err != nil {
			return fmt.Errorf("read gcov counters below %s: %w", d, err)
		}
		for _, f := range got {
			files[path.Join(d, f.Path)] = f.Data
		}
	}
	return specdata.Write(c.cfg.Out, spec, files)
}

// resetCoverage is the start of every spec of a coverage run.
func (h *Harness) resetCoverage(ctx context.Context) {
	if err := h.cov.before(ctx, h.guest); err != nil {
		h.Log("coverage: %v; the gcov data of this spec is not kept", err)
	}
}

// keepCoverage stores the running spec's gcov data, unless the spec was
// skipped or the guest is not healthy after it.
func (h *Harness) keepCoverage(ctx context.Context) {
	if h.cov.cfg == nil || !h.cov.reset {
		return
	}
	r := CurrentSpecReport()
	if r.State == types.SpecStateSkipped {
		h.cov.reset = false
		return
	}
	if v, _ := h.Assess(ctx); v != nil || !h.guest.Alive() {
		h.cov.reset = false
		h.Log("coverage: the VM is not healthy after %q; its gcov data is not kept", r.FullText())
		return
	}
	if err := h.cov.after(ctx, h.guest, r.FullText()); err != nil {
		h.Log("coverage: %v; the gcov data of %q is not kept", err, r.FullText())
	}
}
