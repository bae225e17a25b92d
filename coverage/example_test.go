package coverage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/scxcheck/scxcheck/coverage"
	"github.com/scxcheck/scxcheck/coverage/diff"
	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// The whole flow, as a run with --coverage would do it: the changed lines
// of the posted patch in the tree the kernel was built from, one gcov
// result per spec (collected from /sys/kernel/debug/gcov after the spec,
// counters reset before it), the report and the lcov tracefile.
func Example() {
	ctx := context.Background()
	tree := "/path/to/build/tree"     // the tree copy the kernel was built from
	gcda := "/path/to/artifacts/gcda" // per spec: <spec>/<build dir>/kernel/sched/build_policy.gcda
	out := "/path/to/artifacts/coverage"

	patches, err := diff.ReadPaths("seed.mbox")
	if err != nil {
		log.Fatal(err)
	}
	changes, err := coverage.Locate(os.DirFS(tree), patches...)
	if err != nil {
		log.Fatal(err)
	}

	tool := gcov.Tool{Path: "gcov-12"}
	var merged gcov.Merged
	for _, spec := range []string{"sub-sched attaches", "dispatch nests"} {
		objs, err := gcov.FindObjects(filepath.Join(gcda, spec), tree)
		if err != nil {
			log.Fatal(err)
		}
		cov, err := tool.Run(ctx, objs...)
		if err != nil {
			log.Fatal(err)
		}
		if err := merged.Add(spec, cov); err != nil {
			log.Fatal(err)
		}
	}
	merged.Relative(tree)

	report, err := coverage.NewReport(os.DirFS(tree), changes, &merged)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := report.WriteDir(out); err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(filepath.Join(out, "lcov.info"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := merged.Total().WriteLCOV(f, gcov.LCOV{TestName: "scxcheck", SourceRoot: tree}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(report.Summary())
}
