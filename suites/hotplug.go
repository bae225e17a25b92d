package suites

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

// Exit codes of a hotplug exit (kernel/sched/ext/internal.h).
const (
	ecodeRsnHotplug = 1 << 32 // SCX_ECODE_RSN_HOTPLUG
	ecodeActRestart = 1 << 48 // SCX_ECODE_ACT_RESTART
	cpuOnline       = "/sys/devices/system/cpu/cpu%d/online"
	hotplugSeq      = "/sys/kernel/sched_ext/hotplug_seq"
)

var _ = Describe("CPU hotplug with sub-schedulers attached", Label("hotplug"), func() {
	BeforeEach(func(ctx SpecContext) {
		requireKernel(probe.SubSchedItems...)
		if guest().Hello.CPUs < 2 {
			Skip(fmt.Sprintf("the guest has %d CPU: a CPU to take offline needs two", guest().Hello.CPUs))
		}
	})

	// A scheduler without cid_offline is restarted by the kernel when a
	// CPU goes away (kernel/sched/ext/ext.c handle_hotplug): the root exits
	// SCX_EXIT_UNREG_KERN asking to be restarted, its children go with it,
	// and the tasks carry on in the fair class.
	It("exits the root with SCX_EXIT_UNREG_KERN asking for a restart when a CPU goes offline, and the children with it", func(ctx SpecContext) {
		t1 := newCgroup(ctx, "t1")
		root := loadRoot(ctx, "root", nil)
		child := loadSub(ctx, "child", "child", t1, nil)
		w := start(ctx, t1, proto.WorkSleep, 2, longWork)
		seq := must(ctx, func(ctx context.Context) (uint64, error) { return readUint(ctx, hotplugSeq) })
		online := fmt.Sprintf(cpuOnline, 1)
		Expect(guest().WriteString(ctx, online, "0")).To(Succeed(), "take CPU 1 offline")
		DeferCleanup(func(ctx SpecContext) { _ = guest().WriteString(ctx, online, "1") })

		exitsWith(ctx, root, "SCX_EXIT_UNREG_KERN", "cpu 1 going offline, exiting scheduler")
		Expect(root.Exit(ctx)).To(HaveField("ExitCode", BeNumerically("==", ecodeActRestart|ecodeRsnHotplug)))
		exitsWith(ctx, child, "SCX_EXIT_PARENT")
		Expect(readUint(ctx, hotplugSeq)).To(BeNumerically(">", seq), "hotplug_seq did not move")
		keepsRunning(ctx, w)

		Expect(guest().WriteString(ctx, online, "1")).To(Succeed(), "bring CPU 1 back")
		Eventually(ctx, readFn(online), settle).Should(Equal("1\n"))
		onFairClass(ctx)
		// A new hierarchy works on the CPUs that are back.
		loadRoot(ctx, "again", nil)
		t2 := newCgroup(ctx, "t2")
		again := loadSub(ctx, "child", "child_again", t2, nil)
		finish(ctx, start(ctx, t2, proto.WorkSleep, 2, workTime))
		stillRunning(ctx, again)
	})
})
