package coverage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/scxcheck/scxcheck/coverage/diff"
)

// Locate finds the lines that patches added in a tree that already
// contains them, by their content and context rather than by the hunk
// headers: the posted form of a patch measured on a later tree, where the
// code has moved, and where later patches changed lines around and inside
// the hunks.
//
// Each hunk is placed on its own. Lines compare without whitespace, so
// patches whose indentation a mail archive mangled still match. The hunk's
// lines (context and added, in order) are aligned with the file so that a
// minority of them may differ: lines changed since pair with similar lines,
// lines removed since are skipped, lines added since are stepped over. The
// file is searched at the patch's path first; when the hunk is not found
// there whole, also in the files with the same base name, in the directory
// the file may have become (kernel/sched/ext.c → kernel/sched/ext/*) and in
// its own directory, and the best place wins.
//
// A hunk is located when at least half of its added lines (by weight, a
// brace counting little) are found; its Added lines then carry their line
// numbers in Hunk.File. A hunk that is not located is kept with Status
// NotLocated, so that the report can say so.
func Locate(tree fs.FS, patches ...*diff.Patch) (*Changes, error) {
	l := &locator{tree: tree, files: map[string]*srcFile{}, byBase: map[string]map[string][]string{}}
	c := &Changes{}
	for _, p := range patches {
		for _, f := range p.Files {
			hunks, err := l.locateFile(p, f)
			if err != nil {
				return nil, fmt.Errorf("locate %s in %s: %w", f.Path(), p, err)
			}
			c.Hunks = append(c.Hunks, hunks...)
		}
	}
	return c, nil
}

// locateFile locates the hunks of one file of a patch. Hunks of one file
// mostly stay together: once the file where most of its added lines are is
// known, the hunks are placed again with that file searched first.
func (l *locator) locateFile(p *diff.Patch, f *diff.File) ([]*Hunk, error) {
	hunks := make([]*Hunk, len(f.Hunks))
	for i, dh := range f.Hunks {
		h, err := l.locate(p, f, dh, "")
		if err != nil {
			return nil, err
		}
		hunks[i] = h
	}
	lines := map[string]int{}
	for _, h := range hunks {
		for _, a := range h.Added {
			if a.Line > 0 {
				lines[h.File]++
			}
		}
	}
	most := ""
	for file, n := range lines {
		if n > lines[most] || n == lines[most] && file < most {
			most = file
		}
	}
	if most == "" || most == f.NewPath {
		return hunks, nil
	}
	for i, h := range hunks {
		if h.File == most || h.Status == RemovesOnly {
			continue
		}
		h, err := l.locate(p, f, f.Hunks[i], most)
		if err != nil {
			return nil, err
		}
		hunks[i] = h
	}
	return hunks, nil
}

type locator struct {
	tree  fs.FS
	files map[string]*srcFile // by path; nil for a path that is no text file
	// byBase lists the files below a top directory of the tree by base
	// name, once needed.
	byBase map[string]map[string][]string
}

// maxFileSize bounds the files read: sources, not data.
const maxFileSize = 8 << 20

// file reads a file of the tree; nil when there is none (or it is not text).
func (l *locator) file(p string) (*srcFile, error) {
	if f, ok := l.files[p]; ok {
		return f, nil
	}
	l.files[p] = nil
	if !fs.ValidPath(p) {
		return nil, nil
	}
	st, err := fs.Stat(l.tree, p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && (!st.Mode().IsRegular() || st.Size() > maxFileSize) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	data, err := fs.ReadFile(l.tree, p)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(data[:min(len(data), 8192)], 0) >= 0 {
		return nil, nil
	}
	f := newSrcFile(p, string(data))
	l.files[p] = f
	return f, nil
}

// tiers is how many tiers of candidate files there are.
const tiers = 3

// candidates returns the files where a hunk of the patch's file may be, by
// tier: 0, the file itself (its old path, and the file preferred, if any);
// 1, the files with the same base name below the same top directory
// ("kernel/") and those of the directory the file may have become
// (kernel/sched/ext.c → kernel/sched/ext/); 2, the files of its own
// directory.
func (l *locator) candidates(f *diff.File, prefer string, tier int) ([]string, error) {
	p := f.NewPath
	dir, base := path.Split(p)
	dir = path.Clean(dir)
	switch tier {
	case 0:
		own := []string{f.NewPath}
		if f.OldPath != "" && f.OldPath != f.NewPath {
			own = append(own, f.OldPath)
		}
		if prefer != "" {
			own = append(own, prefer)
		}
		return own, nil
	case 1:
		top, _, _ := strings.Cut(p, "/")
		if top == p {
			top = "."
		}
		if l.byBase[top] == nil {
			if err := l.index(top); err != nil {
				return nil, err
			}
		}
		stem := strings.TrimSuffix(base, path.Ext(base))
		return append(append([]string(nil), l.byBase[top][base]...), dirFiles(l.tree, path.Join(dir, stem))...), nil
	default:
		return dirFiles(l.tree, dir), nil
	}
}

// index lists the files below a top directory of the tree by base name.
func (l *locator) index(top string) error {
	byBase := map[string][]string{}
	err := fs.WalkDir(l.tree, top, func(q string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && q == top {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && q != top {
			return fs.SkipDir
		}
		if d.Type().IsRegular() {
			byBase[d.Name()] = append(byBase[d.Name()], q)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("index the tree: %w", err)
	}
	l.byBase[top] = byBase
	return nil
}

// dirFiles lists the regular files of a directory of the tree, sorted; none
// when it is no directory.
func dirFiles(tree fs.FS, dir string) []string {
	ents, err := fs.ReadDir(tree, dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	return out
}

// goodEnough is the confidence from which the search stops at a tier.
const goodEnough = 0.9

// locate places one hunk, searching the file prefer (if not "") with the
// patch's own.
func (l *locator) locate(p *diff.Patch, f *diff.File, dh *diff.Hunk, prefer string) (*Hunk, error) {
	h := &Hunk{Patch: p.String(), Path: f.Path(), Header: dh.Header()}
	var img []imageLine
	for _, dl := range dh.Lines {
		if dl.Kind == diff.Removed {
			continue
		}
		il := imageLine{norm: normalize(dl.Text), toks: tokenize(dl.Text), added: -1}
		il.info = information(il.norm)
		if dl.Kind == diff.Added {
			il.added = len(h.Added)
			h.Added = append(h.Added, Added{Text: dl.Text, Match: Missing})
		}
		img = append(img, il)
	}
	if len(h.Added) == 0 {
		h.Status, h.Confidence = RemovesOnly, 1
		return h, nil
	}
	if f.IsDeleted() {
		h.Status = NotLocated
		return h, nil
	}
	var best *result
	seen := map[string]bool{}
	for ti := range tiers {
		cands, err := l.candidates(f, prefer, ti)
		if err != nil {
			return nil, err
		}
		for _, cand := range cands {
			if seen[cand] {
				continue
			}
			seen[cand] = true
			sf, err := l.file(cand)
			if err != nil {
				return nil, err
			}
			if sf == nil {
				continue
			}
			pl := sf.place(img)
			if pl == nil {
				continue
			}
			r := judge(img, pl)
			r.tier = ti
			// Within a tier the best alignment wins; a later tier must
			// do clearly better.
			if best == nil || r.tier == best.tier && r.score > best.score ||
				r.tier != best.tier && (r.found > best.found+0.1 || r.found >= best.found && r.score > 1.5*best.score) {
				best = r
			}
		}
		if best != nil && best.confidence >= goodEnough {
			break
		}
	}
	if best == nil || best.found < 0.5 {
		h.Status = NotLocated
		if best != nil {
			h.Note = fmt.Sprintf("best candidate %s matched %.0f%% of the added lines", best.file, 100*best.found)
		} else {
			h.Note = "no line of the hunk is in the candidate files"
		}
		return h, nil
	}
	h.File, h.Confidence = best.file, best.confidence
	exact := true
	for i, il := range img {
		if il.added < 0 {
			continue
		}
		a := &h.Added[il.added]
		j, s := best.pl.line[i], best.pl.sim[i]
		switch {
		case j >= 0 && s == 1:
			a.Line, a.Match = j+1, Same
		case j >= 0 && s >= similar:
			a.Line, a.Match = j+1, Changed
			exact = false
		default:
			exact = false
		}
	}
	// Added lines that follow each other in the hunk must do so in the file.
	for k := 1; k < len(h.Added) && exact; k++ {
		exact = h.Added[k].Line > h.Added[k-1].Line
	}
	h.Status = Fuzzy
	if exact && best.found == 1 {
		h.Status = Exact
	}
	var notes []string
	if h.File != f.NewPath {
		notes = append(notes, "found in "+h.File)
	}
	if best.ambiguous {
		notes = append(notes, fmt.Sprintf("another place in %s matches almost as well", h.File))
	}
	h.Note = strings.Join(notes, "; ")
	return h, nil
}

// result judges a placement.
type result struct {
	pl   *placement
	file string
	tier int
	// found is the share of the added lines found (weighted by their
	// information), confidence the same with changed lines counting their
	// similarity, halved when ambiguous.
	found, confidence float64
	score             float64
	ambiguous         bool
}

func judge(img []imageLine, pl *placement) *result {
	r := &result{pl: pl, file: pl.file.path, score: pl.score}
	var total, found, conf float64
	for i, il := range img {
		if il.added < 0 {
			continue
		}
		total += il.info
		if pl.line[i] >= 0 && pl.sim[i] >= similar {
			found += il.info
			conf += il.info * pl.sim[i]
		}
	}
	r.found, r.confidence = found/total, conf/total
	if pl.second >= 0.9*pl.score {
		r.ambiguous = true
		r.confidence /= 2
	}
	return r
}
