package suites

import (
	"fmt"
	"strconv"
	"strings"

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

func readUint(path string) (uint64, error) {
	b, err := guest.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(b), 10, 64)
}

var _ = Describe("CPU hotplug with sub-schedulers attached", Label("hotplug"), func() {
	BeforeEach(func() {
		requireKernel(probe.SubSchedItems...)
		if guest.Hello.CPUs < 2 {
			Skip(fmt.Sprintf("the guest has %d CPU: a CPU to take offline needs two", guest.Hello.CPUs))
		}
	})

	// A scheduler without cid_offline is restarted by the kernel when a
	// CPU goes away (kernel/sched/ext/ext.c handle_hotplug): the root exits
	// SCX_EXIT_UNREG_KERN asking to be restarted, its children go with it,
	// and the tasks carry on in the fair class.
	It("exits the root with SCX_EXIT_UNREG_KERN asking for a restart when a CPU goes offline, and the children with it", func() {
		t1 := newCgroup("t1")
		root := loadRoot("root", nil)
		child := loadSub("child", "child", t1, nil)
		w := start(t1, proto.WorkSleep, 2, longWork)
		seq := must(func() (uint64, error) { return readUint(hotplugSeq) })
		online := fmt.Sprintf(cpuOnline, 1)
		Expect(guest.WriteFile(online, "0")).To(Succeed(), "take CPU 1 offline")
		DeferCleanup(func() { _ = guest.WriteFile(online, "1") })

		exitsWith(root, "SCX_EXIT_UNREG_KERN", "cpu 1 going offline, exiting scheduler")
		Expect(root.Exit()).To(HaveField("ExitCode", BeNumerically("==", ecodeActRestart|ecodeRsnHotplug)))
		exitsWith(child, "SCX_EXIT_PARENT")
		Expect(readUint(hotplugSeq)).To(BeNumerically(">", seq), "hotplug_seq did not move")
		keepsRunning(w)

		Expect(guest.WriteFile(online, "1")).To(Succeed(), "bring CPU 1 back")
		Eventually(func() (string, error) { return guest.ReadFile(online) }, settle).Should(Equal("1\n"))
		onFairClass()
		// A new hierarchy works on the CPUs that are back.
		loadRoot("again", nil)
		t2 := newCgroup("t2")
		again := loadSub("child", "child_again", t2, nil)
		finish(start(t2, proto.WorkSleep, 2, workTime))
		stillRunning(again)
	})
})
