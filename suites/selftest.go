package suites

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/probe"
)

// SelftestLabel marks specs that fail on purpose: they check scxcheck's own
// failure path (exit codes, artifacts, reproduction bundles, bisect) against
// a real kernel. They run only when a label filter names the label, e.g.
// --label-filter=selftest.
const SelftestLabel = "selftest"

// withoutSelftest adds "!selftest" to a label filter that does not mention
// the label.
func withoutSelftest(filter string) string {
	if strings.Contains(filter, SelftestLabel) {
		return filter
	}
	if strings.TrimSpace(filter) == "" {
		return "!" + SelftestLabel
	}
	return "(" + filter + ") && !" + SelftestLabel
}

var _ = Describe("scxcheck's own failure path", Label(SelftestLabel), func() {
	It("fails on purpose: a running root scheduler is expected to have exited with SCX_EXIT_ERROR", func() {
		requireKernel(probe.SubSchedItems...)
		root := loadRoot("selftest", nil)
		// The root is running, so its exit kind is SCX_EXIT_NONE: this
		// exit-kind assertion fails, deterministically.
		Expect(root.Exit()).To(ExitWith("SCX_EXIT_ERROR"), "selftest: this assertion fails on purpose")
	})
})
