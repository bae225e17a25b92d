package gcov

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Object is the coverage data of one object file: its notes (.gcno, from
// the compiler) and its data (.gcda, from a run).
type Object struct {
	// Notes is the path of the .gcno file.
	Notes string
	// Data is the path of the .gcda file; "" for an object that never
	// ran, whose lines then all count zero.
	Data string
}

// Tool runs gcc's gcov.
type Tool struct {
	// Path is the gcov program; "" means "gcov". It must match the gcc
	// that compiled the objects (gcov-12 for gcc 12).
	Path string
}

// Run runs gcov on the objects and returns their coverage, with source
// paths made absolute by the directory each object was compiled in (see
// Coverage.Relative).
//
// gcov looks for a .gcda file's notes beside it under the same name, while
// a program (or the kernel) writes its .gcda files where its objects were
// built: Run therefore links each pair into a temporary
// directory under a common name and runs gcov there, so the files may be
// anywhere and named anything. gcov writes nothing but its output.
func (t Tool) Run(ctx context.Context, objects ...Object) (*Coverage, error) {
	if len(objects) == 0 {
		return New(), nil
	}
	tmp, err := os.MkdirTemp("", "gcov-")
	if err != nil {
		return nil, fmt.Errorf("gcov: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"--json-format", "--stdout", "--branch-probabilities"}
	for i, o := range objects {
		stem := fmt.Sprintf("o%d", i)
		if err := place(o.Notes, filepath.Join(tmp, stem+".gcno")); err != nil {
			return nil, fmt.Errorf("gcov: notes of object %d: %w", i, err)
		}
		if o.Data != "" {
			if err := place(o.Data, filepath.Join(tmp, stem+".gcda")); err != nil {
				return nil, fmt.Errorf("gcov: data of object %d: %w", i, err)
			}
		}
		args = append(args, stem+".gcda")
	}
	prog := t.Path
	if prog == "" {
		prog = "gcov"
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Dir = tmp
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("gcov %s: %w: %s", describe(objects), err, strings.TrimSpace(stderr.String()))
	}
	// gcov exits 0 after some failures that leave a file out.
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "stamp mismatch") || strings.Contains(l, "prefer version") || strings.Contains(l, "not a gcov") {
			return nil, fmt.Errorf("gcov %s: %s", describe(objects), strings.TrimSpace(stderr.String()))
		}
	}
	c, err := Parse(&stdout)
	if err != nil {
		return nil, fmt.Errorf("gcov %s: %w", describe(objects), err)
	}
	return c, nil
}

func describe(objects []Object) string {
	s := objects[0].Notes
	if len(objects) > 1 {
		s += fmt.Sprintf(" and %d more", len(objects)-1)
	}
	return s
}

// place makes dst a symbolic link to src, which must exist.
func place(src, dst string) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return err
	}
	return os.Symlink(abs, dst)
}

// FindObjects pairs every .gcda file below dataDir with the .gcno file at
// the same relative path below notesDir: the kernel's
// /sys/kernel/debug/gcov/<build directory> (copied out of the guest) with
// the build directory, for instance. A .gcda without its .gcno is an error:
// the data then belongs to another build.
func FindObjects(dataDir, notesDir string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".gcda") {
			return nil
		}
		rel, err := filepath.Rel(dataDir, p)
		if err != nil {
			return err
		}
		notes := filepath.Join(notesDir, strings.TrimSuffix(rel, ".gcda")+".gcno")
		if _, err := os.Stat(notes); err != nil {
			return fmt.Errorf("notes of %s: %w", p, err)
		}
		out = append(out, Object{Notes: notes, Data: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find gcov objects: %w", err)
	}
	return out, nil
}
