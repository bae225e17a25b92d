package suites

import (
	"context"

	. "github.com/onsi/ginkgo/v2"

	"github.com/scxcheck/scxcheck/probe"
)

// describeSubSched is Describe for the specs of one label that need the
// sub-scheduler API: before each spec the capability probe skips it, naming
// what the kernel lacks, when the kernel has not every item of
// probe.SubSchedItems.
func describeSubSched(text, label string, body func()) bool {
	return Describe(text, Label(label), func() {
		BeforeEach(func(ctx SpecContext) { requireKernel(probe.SubSchedItems...) })
		body()
	})
}

// threeLevels is the hierarchy several specs start from: the root
// scheduler "root" (fixture parent), "mid" (fixture parent) attached to
// cgroup a and "leaf" (fixture child) attached to a/b.
type threeLevels struct {
	a, b            Cgroup
	root, mid, leaf *Sched
}

// loadThreeLevels creates cgroups a and a/b and loads root, mid and leaf
// on them, each one checked loaded before the next. rootKnobs, if not
// nil, gives the root's knobs from the cgroups: they exist first, so that
// the root can be told their ids at load time (rodata).
func loadThreeLevels(ctx context.Context, rootKnobs func(a, b Cgroup) map[string]uint64) threeLevels {
	GinkgoHelper()
	a, b := newCgroup(ctx, "a"), newCgroup(ctx, "a/b")
	var knobs map[string]uint64
	if rootKnobs != nil {
		knobs = rootKnobs(a, b)
	}
	root := loadRoot(ctx, "root", knobs)
	mid := loadSub(ctx, "parent", "mid", a, nil)
	return threeLevels{a: a, b: b, root: root, mid: mid, leaf: loadSub(ctx, "child", "leaf", b, nil)}
}

// twoChildren is the root scheduler "root" (fixture parent) and two
// children side by side (fixture child): "child1" on cgroup t1 and
// "child2" on t2.
type twoChildren struct {
	t1, t2       Cgroup
	root, c1, c2 *Sched
}

// loadTwoChildren creates cgroups t1 and t2 and loads the root, with the
// knobs given, then child1 and child2.
func loadTwoChildren(ctx context.Context, rootKnobs map[string]uint64) twoChildren {
	GinkgoHelper()
	f := twoChildren{t1: newCgroup(ctx, "t1"), t2: newCgroup(ctx, "t2")}
	f.root = loadRoot(ctx, "root", rootKnobs)
	f.c1 = loadSub(ctx, "child", "child1", f.t1, nil)
	f.c2 = loadSub(ctx, "child", "child2", f.t2, nil)
	return f
}

// loadRootAndChild loads the root scheduler "root" (fixture parent), creates
// cgroup t1 and loads a child of that name (fixture child, with the knobs
// given) on it.
func loadRootAndChild(ctx context.Context, name string, knobs map[string]uint64) (root *Sched, t1 Cgroup, child *Sched) {
	GinkgoHelper()
	root = loadRoot(ctx, "root", nil)
	t1 = newCgroup(ctx, "t1")
	return root, t1, loadSub(ctx, "child", name, t1, knobs)
}
