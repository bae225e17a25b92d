// Package specdata keeps the gcov data of a coverage run per spec: after
// each spec the harness stores the kernel's .gcda files (counters reset
// before the spec, read after it) in a directory of that spec's own, and
// once the run is over Merge runs gcov on each spec's data and merges the
// results into one gcov.Merged keyed by spec text, so that every line
// carries the specs that executed it.
//
// The layout of a run's directory: one subdirectory per spec, named by a
// hash of the spec's text, holding spec.json (the text) and the .gcda
// files at their paths relative to the kernel's build directory
// (kernel/sched/build_policy.gcda), the paths of the .gcno files in the
// build's notes.
package specdata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/scxcheck/scxcheck/coverage/gcov"
)

// specFile holds a spec's text in its directory.
const specFile = "spec.json"

// Spec is one spec's stored data.
type Spec struct {
	Text string `json:"text"` // Ginkgo's full text
	Dir  string `json:"-"`    // holds its .gcda files
}

// Write stores one spec's .gcda files under dir: files maps paths
// relative to the kernel's build directory to their content. A spec
// written again replaces its data.
func Write(dir, spec string, files map[string][]byte) error {
	h := sha256.Sum256([]byte(spec))
	sdir := filepath.Join(dir, hex.EncodeToString(h[:8]))
	if err := os.RemoveAll(sdir); err != nil {
		return fmt.Errorf("store the gcov data of %q: %w", spec, err)
	}
	for p, data := range files {
		rel := filepath.FromSlash(p)
		if !filepath.IsLocal(rel) || !strings.HasSuffix(rel, ".gcda") {
			return fmt.Errorf("store the gcov data of %q: %q is not a .gcda file below the build directory", spec, p)
		}
		target := filepath.Join(sdir, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fmt.Errorf("store the gcov data of %q: %w", spec, err)
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return fmt.Errorf("store the gcov data of %q: %w", spec, err)
		}
	}
	b, _ := json.Marshal(Spec{Text: spec})
	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return fmt.Errorf("store the gcov data of %q: %w", spec, err)
	}
	// Written last: a directory without it is incomplete and not read.
	if err := os.WriteFile(filepath.Join(sdir, specFile), b, 0o644); err != nil {
		return fmt.Errorf("store the gcov data of %q: %w", spec, err)
	}
	return nil
}

// List returns the specs stored in dir, by text.
func List(dir string) ([]Spec, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list per-spec gcov data: %w", err)
	}
	var out []Spec
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sdir := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(filepath.Join(sdir, specFile))
		if errors.Is(err, fs.ErrNotExist) {
			continue // incomplete
		}
		var s Spec
		if err == nil {
			err = json.Unmarshal(b, &s)
		}
		if err != nil {
			return nil, fmt.Errorf("list per-spec gcov data: %s: %w", sdir, err)
		}
		s.Dir = sdir
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Text < out[j].Text })
	return out, nil
}

// Merge runs tool on every spec's data in dir with the notes (the .gcno
// files at their paths relative to the build directory) and merges the
// results keyed by spec text, paths made relative to srcRoot (the tree
// the kernel was compiled from). progress, if set, is called after each
// spec with the number done and the total.
func Merge(ctx context.Context, dir, notes, srcRoot string, tool gcov.Tool, progress func(done, total int)) (*gcov.Merged, error) {
	specs, err := List(dir)
	if err != nil {
		return nil, err
	}
	covs := make([]*gcov.Coverage, len(specs))
	errs := make([]error, len(specs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	next := make(chan int)
	for range max(1, runtime.NumCPU()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				covs[i], errs[i] = spec(ctx, specs[i], notes, tool)
				mu.Lock()
				done++
				if progress != nil {
					progress(done, len(specs))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &gcov.Merged{}
	for i, s := range specs {
		covs[i].Relative(srcRoot)
		if err := m.Add(s.Text, covs[i]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// spec runs gcov on one spec's data.
func spec(ctx context.Context, s Spec, notes string, tool gcov.Tool) (*gcov.Coverage, error) {
	objs, err := gcov.FindObjects(s.Dir, notes)
	if err != nil {
		return nil, fmt.Errorf("gcov data of %q: %w", s.Text, err)
	}
	c, err := tool.Run(ctx, objs...)
	if err != nil {
		return nil, fmt.Errorf("gcov data of %q: %w", s.Text, err)
	}
	return c, nil
}
