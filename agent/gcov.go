package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/scxcheck/scxcheck/proto"
)

// GcovReset zeroes the kernel's gcov counters: the harness calls it before
// each spec of a coverage run, so that what GcovCollect reads after the
// spec is what that spec executed.
func (s *Service) GcovReset(_ proto.Empty, _ *proto.Empty) error {
	return resetGcov(proto.GcovRoot)
}

// GcovCollect returns the kernel's .gcda files below a directory of
// proto.GcovRoot.
func (s *Service) GcovCollect(args proto.GcovQuery, reply *proto.GcovData) error {
	files, err := collectGcov(proto.GcovRoot, args.Dir)
	reply.Files = files
	return err
}

// noGcov says what a missing gcov root means.
func noGcov(root string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s: the kernel has no gcov support (CONFIG_GCOV_KERNEL; `scxcheck kernel build --coverage` builds one): %w", root, err)
	}
	return err
}

// resetGcov writes to root/reset, which zeroes every gcov counter.
func resetGcov(root string) error {
	if _, err := os.Stat(root); err != nil {
		return noGcov(root, err)
	}
	f, err := os.OpenFile(filepath.Join(root, "reset"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reset gcov counters: %w", err)
	}
	if _, err := f.Write([]byte("1")); err != nil {
		f.Close()
		return fmt.Errorf("reset gcov counters: %w", err)
	}
	return f.Close()
}

// collectGcov reads every .gcda file below root/dir (dir relative to root;
// a leading slash is allowed, as in root followed by an absolute build
// directory). The .gcno entries beside them are links to the build
// machine's files and are not followed.
func collectGcov(root, dir string) ([]proto.GcovFile, error) {
	rel := strings.TrimPrefix(filepath.Clean("/"+dir), "/")
	if rel == "" {
		rel = "."
	}
	if !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("collect gcov data: %q is not a directory below %s", dir, root)
	}
	if _, err := os.Stat(root); err != nil {
		return nil, noGcov(root, err)
	}
	top := filepath.Join(root, rel)
	var out []proto.GcovFile
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(p, ".gcda") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name, _ := filepath.Rel(top, p)
		out = append(out, proto.GcovFile{Path: filepath.ToSlash(name), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect gcov data below %s: %w", top, err)
	}
	return out, nil
}
