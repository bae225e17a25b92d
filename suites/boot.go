package suites

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/probe"
)

var _ = Describe("the guest kernel", Label("boot"), func() {
	It("has every sub-scheduler item in its BTF", func(ctx SpecContext) {
		Expect(guest().Caps().Err).To(BeEmpty(), "the probe could not read the kernel's BTF")
		Expect(guest().Caps().Missing).NotTo(ContainElements(probe.SubSchedItems),
			"the kernel lacks sub-scheduler items")
		Expect(guest().Caps().Have).To(ContainElements(probe.SubSchedItems))
		Expect(guest().Caps().ExitKinds).To(HaveKeyWithValue("SCX_EXIT_ERROR", BeNumerically(">", 0)))
		Expect(guest().Caps().ExitKinds).To(HaveKey("SCX_EXIT_PARENT"))
	})

	It("reports sched_ext disabled before any scheduler loads", func(ctx SpecContext) {
		requireKernel(probe.SubSchedItems...)
		Expect(guest().ReadString(ctx, "/sys/kernel/sched_ext/state")).To(Equal("disabled\n"))
	})

	It("mounts cgroup2 with the cpu controller", func(ctx SpecContext) {
		mounts, err := guest().ReadString(ctx, "/proc/mounts")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Split(mounts, "\n")).To(ContainElement(HavePrefix("cgroup2 /sys/fs/cgroup cgroup2 ")))
		controllers, err := guest().ReadString(ctx, "/sys/fs/cgroup/cgroup.controllers")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(controllers)).To(ContainElement("cpu"))
	})
})
