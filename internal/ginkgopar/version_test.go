package ginkgopar

import (
	"os"
	"strings"
	"testing"
)

// The server copies Ginkgo internals: a Ginkgo update must be checked
// against them, so go.mod naming a version other than the one copied fails
// here.
func TestGinkgoVersion(t *testing.T) {
	b, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) < 2 || f[0] != "github.com/onsi/ginkgo/v2" {
			continue
		}
		if f[1] != CopiedFrom {
			t.Fatalf("go.mod uses Ginkgo %s, but ginkgopar copies the parallel protocol of %s: "+
				"diff internal/parallel_support of both versions, port the changes, then set CopiedFrom", f[1], CopiedFrom)
		}
		return
	}
	t.Fatal("go.mod does not require github.com/onsi/ginkgo/v2")
}
