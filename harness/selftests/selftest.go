package selftests

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/scxcheck/scxcheck/harness"
	. "github.com/scxcheck/scxcheck/matchers"
	"github.com/scxcheck/scxcheck/outcome"
	"github.com/scxcheck/scxcheck/probe"
	"github.com/scxcheck/scxcheck/proto"
)

var _ = Describe("scxcheck's own failure path", Label(harness.SelftestLabel), func() {
	It("fails on purpose: a running root scheduler is expected to have exited with SCX_EXIT_ERROR", func(ctx SpecContext) {
		h.RequireKernel(probe.SubSchedItems...)
		root, err := h.Load(ctx, proto.LoadScheduler{Fixture: "parent", Name: "selftest"})
		Expect(err).NotTo(HaveOccurred())
		// The root is running, so its exit kind is SCX_EXIT_NONE: this
		// exit-kind assertion fails, deterministically.
		harness.Classed(outcome.Exit).Expect(root.Exit(ctx)).To(ExitWith("SCX_EXIT_ERROR"), "selftest: this assertion fails on purpose")
	})
})
