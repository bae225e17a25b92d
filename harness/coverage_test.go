package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/scxcheck/scxcheck/coverage/specdata"
	"github.com/scxcheck/scxcheck/proto"
)

// fakeGcovAgent stands in for the guest's agent (no VM): its "kernel"
// counts how often each path ran since the last reset and lays the counts
// out as proto.GcovRoot does, one .gcda per object below the build
// directory.
type fakeGcovAgent struct {
	counts   map[string]int // path → runs since the reset
	queried  []string
	resetErr error
}

func (f *fakeGcovAgent) run(path string) { f.counts[path]++ }

func (f *fakeGcovAgent) GcovReset(context.Context) error {
	if f.resetErr != nil {
		return f.resetErr
	}
	f.counts = map[string]int{}
	return nil
}

func (f *fakeGcovAgent) GcovCollect(_ context.Context, dir string) ([]proto.GcovFile, error) {
	f.queried = append(f.queried, dir)
	var b strings.Builder
	for _, p := range []string{"attach", "dispatch", "distant"} {
		if n := f.counts[p]; n > 0 {
			fmt.Fprintf(&b, "%s=%d\n", p, n)
		}
	}
	return []proto.GcovFile{{Path: "build_policy.gcda", Data: []byte(b.String())}}, nil
}

// stored returns what was kept of a spec.
func stored(t *testing.T, out, spec string) (string, bool) {
	t.Helper()
	specs, err := specdata.List(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if s.Text == spec {
			b, err := os.ReadFile(filepath.Join(s.Dir, "kernel/sched/build_policy.gcda"))
			if err != nil {
				t.Fatalf("%q kept without its .gcda: %v", spec, err)
			}
			return string(b), true
		}
	}
	return "", false
}

// Each spec's data is what ran between the reset before it and the read
// after it: a path one spec alone ran is in that spec's data alone, and
// what ran between specs (the gap after a read) is in nobody's.
func TestCoverageCountersPerSpec(t *testing.T) {
	out := t.TempDir()
	a := &fakeGcovAgent{counts: map[string]int{"attach": 5}} // boot ran some
	c := specCoverage{cfg: &Coverage{BuildDir: "/build/obj", Dirs: []string{"kernel/sched"}, Out: out}}
	ctx := t.Context()
	if err := c.checkGcov(ctx, a); err != nil {
		t.Fatal(err)
	}
	spec := func(name string, paths ...string) {
		if err := c.before(ctx, a); err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			a.run(p)
		}
		if err := c.after(ctx, a, name); err != nil {
			t.Fatal(err)
		}
		a.run("dispatch") // between specs: nobody's
	}
	spec("attaches", "attach")
	spec("dispatches distant", "attach", "distant", "distant")
	spec("dispatches", "dispatch")
	for name, want := range map[string]string{
		"attaches":           "attach=1\n",
		"dispatches distant": "attach=1\ndistant=2\n",
		"dispatches":         "dispatch=1\n",
	} {
		if got, ok := stored(t, out, name); !ok || got != want {
			t.Errorf("%q kept %q (%v), want %q", name, got, ok, want)
		}
	}
	if a.queried[0] != "/build/obj/kernel/sched" {
		t.Errorf("read %q, want the build directory's kernel/sched below the gcov root", a.queried[0])
	}
}

// A spec whose counters could not be reset keeps no data (what they hold
// is not its alone); the next spec, reset, does.
func TestCoverageResetFailedKeepsNothing(t *testing.T) {
	out := t.TempDir()
	a := &fakeGcovAgent{counts: map[string]int{}}
	c := specCoverage{cfg: &Coverage{BuildDir: "/b", Dirs: []string{"kernel/sched"}, Out: out}}
	ctx := t.Context()
	a.resetErr = errors.New("write reset: EIO")
	if err := c.before(ctx, a); err == nil {
		t.Fatal("a failed reset was not reported")
	}
	a.run("attach")
	if err := c.after(ctx, a, "unreset"); err != nil {
		t.Fatal(err)
	}
	if _, ok := stored(t, out, "unreset"); ok {
		t.Error("the data of a spec without a reset was kept")
	}
	a.resetErr = nil
	if err := c.before(ctx, a); err != nil {
		t.Fatal(err)
	}
	a.run("distant")
	if err := c.after(ctx, a, "reset"); err != nil {
		t.Fatal(err)
	}
	if got, _ := stored(t, out, "reset"); got != "distant=1\n" {
		t.Errorf("kept %q", got)
	}
}

// A guest without gcov (ENOENT from the agent) is ErrNoGcov; without
// Options.Coverage nothing is asked of the agent.
func TestCoverageNoGcov(t *testing.T) {
	a := &fakeGcovAgent{resetErr: &proto.RemoteError{Method: proto.MethodGcovReset, Msg: "no /sys/kernel/debug/gcov", Errno: syscall.ENOENT}}
	c := specCoverage{cfg: &Coverage{Out: t.TempDir()}}
	if err := c.checkGcov(t.Context(), a); !errors.Is(err, ErrNoGcov) {
		t.Errorf("checkGcov = %v, want ErrNoGcov", err)
	}
	off := specCoverage{}
	if err := off.checkGcov(t.Context(), a); err != nil {
		t.Errorf("without coverage: %v", err)
	}
	if err := off.before(t.Context(), a); err != nil || off.after(t.Context(), a, "x") != nil || len(a.queried) > 0 {
		t.Error("a run without coverage asked the agent for gcov data")
	}
}
