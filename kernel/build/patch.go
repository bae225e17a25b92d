package build

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	kernelpatches "github.com/scxcheck/scxcheck/fixtures/kernel-patches"
	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/kernel/debian"
)

// Patch is one patch to apply with -p1: a diff, or one message of an mbox.
type Patch struct {
	Name  string   // e.g. "0001-foo.patch" or "series.mbox [2/5] sched_ext: foo"
	Data  []byte   // the whole text; patch skips what is not a diff
	Files []string // the files it changes, relative to the tree
	// Test marks scxcheck's own test-only patch (TestPatches).
	Test bool
}

// mboxFromRE matches the line that starts a message in an mbox, as git
// format-patch writes it: "From <sha> Mon Sep 17 00:00:00 2001".
var mboxFromRE = regexp.MustCompile(`^From \S+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) `)

// seriesRE matches a kernel series: major.minor.
var seriesRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// CheckSeries says whether s is a kernel series, major.minor (e.g. "7.3").
func CheckSeries(s string) error {
	if !seriesRE.MatchString(s) {
		return fmt.Errorf("%q is not a kernel series: want major.minor, e.g. %s", s, DefaultSeries)
	}
	return nil
}

// Series returns the kernel series (major.minor) of a kernel version such
// as a Tree's, e.g. "7.3" for "7.3.4"; "" when version does not start so.
func Series(version string) string { return debian.KernelSeries(version) }

// LoadPatches reads the patches at paths, in order, for a tree of the
// kernel series series (major.minor): a patch file, an mbox (each message
// becomes a patch), or a directory, whose patches are applied in the order
// of its quilt "series" file if it has one, else of the names of its
// *.patch, *.diff and *.mbox files (0001-..., 0002-...). A directory of
// per-series subdirectories ("7.2/", "7.3/") stands for the one named
// series. Its errors wrap ErrPatch.
func LoadPatches(paths []string, series string) ([]Patch, error) {
	var out []Patch
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, &wrapError{fmt.Sprintf("patch %s: %v", p, unwrapPathError(err)), []error{ErrPatch}}
		}
		files := []string{p}
		if fi.IsDir() {
			if files, err = patchDir(osFS{}, p, series); err != nil {
				return nil, err
			}
		}
		ps, err := readPatchFiles(osFS{}, files)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// TestPatches returns scxcheck's test-only patch for a tree of series from
// fsys, which holds one directory of patches per series (nil = the one
// embedded in scxcheck, package fixtures/kernel-patches). Its errors wrap
// ErrPatch.
func TestPatches(fsys fs.FS, series string) ([]Patch, error) {
	if fsys == nil {
		fsys = kernelpatches.FS
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("scxcheck's test-only kernel patches: %w", err)
	}
	if have := seriesDirs(entries); !slices.Contains(have, series) {
		return nil, &wrapError{fmt.Sprintf("scxcheck's test-only kernel patch exists for kernel series %s, not for this tree's %s: "+
			"pass --no-test-patch to build without it", strings.Join(have, ", "), series), []error{ErrPatch}}
	}
	files, err := patchDir(fsys, series, "")
	if err != nil {
		return nil, err
	}
	ps, err := readPatchFiles(fsys, files)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		ps[i].Name = series + "/" + ps[i].Name
		ps[i].Test = true
	}
	return ps, nil
}

// osFS reads the file system under the names the user gave, relative or
// absolute, for the functions that take an fs.FS.
type osFS struct{}

func (osFS) Open(name string) (fs.File, error)          { return os.Open(name) }
func (osFS) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// seriesDirs returns the entries named by a kernel series, in version order.
func seriesDirs(entries []fs.DirEntry) []string {
	var out []string
	for _, e := range entries {
		if e.IsDir() && seriesRE.MatchString(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.SortFunc(out, compareVersions)
	return out
}

// patchDir lists the patches of a directory in order; of its subdirectory
// series when it has per-series subdirectories.
func patchDir(fsys fs.FS, dir, series string) ([]string, error) {
	if data, err := fs.ReadFile(fsys, filepath.Join(dir, "series")); err == nil {
		var files []string
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			if len(fields) > 1 && fields[1] != "-p1" {
				return nil, &wrapError{fmt.Sprintf("patch series %s: %s: only -p1 patches are supported", filepath.Join(dir, "series"), line), []error{ErrPatch}}
			}
			files = append(files, filepath.Join(dir, fields[0]))
		}
		if len(files) == 0 {
			return nil, &wrapError{fmt.Sprintf("patch series %s lists no patch", filepath.Join(dir, "series")), []error{ErrPatch}}
		}
		return files, nil
	}
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, &wrapError{fmt.Sprintf("patch directory %s: %v", dir, unwrapPathError(err)), []error{ErrPatch}}
	}
	var files []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && (strings.HasSuffix(n, ".patch") || strings.HasSuffix(n, ".diff") || strings.HasSuffix(n, ".mbox")) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	if perSeries := seriesDirs(entries); len(perSeries) > 0 {
		switch {
		case len(files) > 0:
			return nil, &wrapError{fmt.Sprintf("patch directory %s holds both patches and per-series directories (%s): "+
				"move the patches into the series they are for", dir, strings.Join(perSeries, ", ")), []error{ErrPatch}}
		case !slices.Contains(perSeries, series):
			return nil, &wrapError{fmt.Sprintf("patch directory %s has patches for kernel series %s, none for this tree's %s",
				dir, strings.Join(perSeries, ", "), series), []error{ErrPatch}}
		}
		return patchDir(fsys, filepath.Join(dir, series), "")
	}
	if len(files) == 0 {
		return nil, &wrapError{fmt.Sprintf("patch directory %s holds no *.patch, *.diff or *.mbox file", dir), []error{ErrPatch}}
	}
	slices.Sort(files)
	return files, nil
}

// readPatchFiles reads the patch files in order.
func readPatchFiles(fsys fs.FS, files []string) ([]Patch, error) {
	var out []Patch
	for _, f := range files {
		ps, err := readPatchFile(fsys, f)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// readPatchFile reads a patch file, splitting an mbox into its messages and
// leaving out messages without a diff (a cover letter).
func readPatchFile(fsys fs.FS, path string) ([]Patch, error) {
	data, err := fs.ReadFile(fsys, path)
	if err != nil {
		return nil, &wrapError{fmt.Sprintf("patch %s: %v", path, unwrapPathError(err)), []error{ErrPatch}}
	}
	msgs := splitMbox(data)
	var out []Patch
	for i, m := range msgs {
		files := patchFiles(m)
		if len(files) == 0 {
			continue
		}
		name := filepath.Base(path)
		if len(msgs) > 1 {
			name = fmt.Sprintf("%s [%d/%d]", name, i+1, len(msgs))
			if s := subject(m); s != "" {
				name += " " + s
			}
		}
		out = append(out, Patch{Name: name, Data: m, Files: files})
	}
	if len(out) == 0 {
		return nil, &wrapError{fmt.Sprintf("patch %s holds no diff", path), []error{ErrPatch}}
	}
	return out, nil
}

// splitMbox splits data at mbox "From " lines; data that is not an mbox is
// one message.
func splitMbox(data []byte) [][]byte {
	var msgs [][]byte
	start := 0
	off := 0
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if mboxFromRE.Match(line) && off > start {
			msgs = append(msgs, data[start:off])
			start = off
		}
		off += len(line)
	}
	return append(msgs, data[start:])
}

// subject returns an mbox message's Subject without its [PATCH] tag.
func subject(msg []byte) string {
	s := bufio.NewScanner(bytes.NewReader(msg))
	for s.Scan() {
		line := s.Text()
		if line == "" {
			return ""
		}
		if v, ok := strings.CutPrefix(line, "Subject: "); ok {
			if strings.HasPrefix(v, "[") {
				if i := strings.Index(v, "] "); i >= 0 {
					v = v[i+2:]
				}
			}
			return v
		}
	}
	return ""
}

// patchFiles returns the files a -p1 diff changes, creates or deletes.
func patchFiles(data []byte) []string {
	var files []string
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 1<<20)
	var minus string
	for s.Scan() {
		line := s.Text()
		if v, ok := strings.CutPrefix(line, "--- "); ok {
			minus = v
			continue
		}
		v, ok := strings.CutPrefix(line, "+++ ")
		if !ok || minus == "" {
			minus = ""
			continue
		}
		for _, name := range []string{v, minus} {
			name, _, _ = strings.Cut(name, "\t")
			if name == "/dev/null" {
				continue
			}
			if _, rest, ok := strings.Cut(name, "/"); ok && rest != "" && !slices.Contains(files, rest) {
				files = append(files, rest)
			}
			break
		}
		minus = ""
	}
	return files
}

// patchesKey identifies a patch series by content and order.
func patchesKey(patches []Patch) []string {
	var keys []string
	for _, p := range patches {
		keys = append(keys, fsutil.HashBytes(p.Data))
	}
	return keys
}

// applyPatches applies the patches to the tree copy in dir in order, with
// GNU patch, exactly (no fuzz) and refusing reversed patches.
func applyPatches(ctx context.Context, r Runner, dir, version string, patches []Patch) error {
	for _, p := range patches {
		var out bytes.Buffer
		err := r.Run(ctx, &Cmd{Dir: dir, Name: "patch", Args: []string{"-p1", "--forward", "--batch", "--fuzz=0",
			"--no-backup-if-mismatch", "--reject-file=-", "--quiet"}, Stdin: bytes.NewReader(p.Data), Stdout: &out, Stderr: &out})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			detail := strings.TrimSpace(out.String())
			if lines := strings.Split(detail, "\n"); len(lines) > 8 {
				detail = strings.Join(lines[:8], "\n") + "\n..."
			}
			what, hint := "patch "+p.Name, ""
			if p.Test {
				what, hint = "scxcheck's test-only patch "+p.Name, " (--no-test-patch builds without it)"
			}
			return &wrapError{fmt.Sprintf("%s does not apply to the kernel tree (%s): %v%s\n%s", what, version, err, hint, indent(detail)), []error{ErrPatch}}
		}
	}
	return nil
}

func indent(s string) string {
	if s == "" {
		return s
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// patchedState remembers the files the patches of the last build changed in
// the tree copy: their content hash and modification time. An empty hash
// marks a file that patches may have changed without a record of how.
type patchedState map[string]patchedFile

type patchedFile struct {
	Hash  string
	MTime time.Time
}

func readPatchedState(path string) patchedState {
	var st patchedState
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &st)
	}
	return st
}

func (st patchedState) write(path string) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// markPatching records, before patches are applied, every file they or the
// last ones may change, so that a failed run leaves no changed file unknown
// to the next sync.
func markPatching(statePath string, prev patchedState, patches []Patch) error {
	st := patchedState{}
	for f := range prev {
		st[f] = patchedFile{}
	}
	for _, p := range patches {
		for _, f := range p.Files {
			st[f] = patchedFile{}
		}
	}
	return st.write(statePath)
}

// keepPatchedTimes gives each file the patches changed its previous
// modification time when its content is what the last build produced, so
// that applying the same patches again does not make the kernel's make
// rebuild them. It then records the files' state for the next build.
func keepPatchedTimes(dir, statePath string, prev patchedState, patches []Patch) error {
	next := patchedState{}
	for _, p := range patches {
		for _, f := range p.Files {
			path := filepath.Join(dir, f)
			fh, err := fsutil.HashFile(path)
			if err != nil {
				continue // deleted by the patch
			}
			h := fh.SHA256
			if old, ok := prev[f]; ok && old.Hash == h {
				if err := os.Chtimes(path, old.MTime, old.MTime); err != nil {
					return err
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			next[f] = patchedFile{Hash: h, MTime: fi.ModTime()}
		}
	}
	return next.write(statePath)
}
