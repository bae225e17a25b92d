package selftests

import (
	"os"
	"syscall"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/harness"
	"github.com/scxcheck/scxcheck/proto"
)

// FaultSelftestEnv, set to 1, adds specs that break the VM without
// declaring it expected, labelled selftest and selftest-fault: they check
// what a real failure looks like in the report and the exit code (kernel
// fault and agent failure: 1; QEMU killed: 3). Without it they do not exist,
// so that `--label-filter=selftest` runs are not changed by them.
const FaultSelftestEnv = "SCXCHECK_SELFTEST_FAULTS"

var _ = func() bool {
	if os.Getenv(FaultSelftestEnv) != "1" {
		return false
	}
	Describe("scxcheck's verdict on an unexpected failure", Label(harness.SelftestLabel, "selftest-fault"), func() {
		It("fails a spec during which the kernel panics", func(ctx SpecContext) {
			_ = guest().WriteString(ctx, "/proc/sysrq-trigger", "c")
		})
		It("fails a spec during which the agent dies", func(ctx SpecContext) {
			Expect(guest().Fault(ctx, proto.Fault{Action: proto.FaultExit})).To(Succeed())
			Eventually(guest().Exited(), panicVerdict).Should(BeClosed())
		})
		It("fails a spec during which QEMU is killed, as infrastructure", func(ctx SpecContext) {
			Expect(syscall.Kill(guest().PID(), syscall.SIGKILL)).To(Succeed())
			Eventually(guest().Exited(), qemuVerdict).Should(BeClosed())
		})
	})
	return true
}()
