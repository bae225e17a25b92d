package suites

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/proto"
)

var _ = describeSubSched("sub-scheduler nesting", "nesting", func() {
	It("refuses a fourth level below the root with max nesting depth and keeps the others", func(ctx SpecContext) {
		l1, l2, l3, l4 := newCgroup(ctx, "l1"), newCgroup(ctx, "l1/l2"), newCgroup(ctx, "l1/l2/l3"), newCgroup(ctx, "l1/l2/l3/l4")
		root := loadRoot(ctx, "root", nil)
		levels := []*Sched{root,
			loadSub(ctx, "parent", "level1", l1, nil),
			loadSub(ctx, "parent", "level2", l2, nil),
			loadSub(ctx, "parent", "level3", l3, nil),
		}
		fourth, err := load(ctx, proto.LoadScheduler{Fixture: "child", Name: "level4", Cgroup: l4.Path})
		if err != nil {
			Expect(err).To(MatchError(ContainSubstring("max nesting depth")))
		} else {
			Eventually(func() (string, error) {
				info, err := fourth.Exit(ctx)
				return info.Msg, err
			}, settle).Should(ContainSubstring("max nesting depth"))
		}
		finish(ctx, start(ctx, l3, proto.WorkSleep, 1, workTime))
		for _, s := range levels {
			stillRunning(ctx, s)
		}
	})
})
