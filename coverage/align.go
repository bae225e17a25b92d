package coverage

import (
	"math"
	"sort"
	"strings"
	"unicode"
)

// This file finds a hunk's post-patch lines (its context and added lines,
// in order) in a source file: a local alignment (Smith-Waterman) of the hunk's lines against windows of
// the file around lines that match exactly. Lines compare without
// whitespace; lines that differ can still pair when their tokens are
// similar (a line changed since). Every line is weighted by how telling it
// is: its length, and how rare it is in the file.

// srcFile is a file of the tree, read for locating hunks.
type srcFile struct {
	path string
	text []string
	norm []string
	info []float64
	pos  map[string][]int // normalized text → line indexes
	toks [][]string       // tokens by line, computed on demand
}

func newSrcFile(path, data string) *srcFile {
	data = strings.TrimSuffix(strings.ReplaceAll(data, "\r\n", "\n"), "\n")
	f := &srcFile{path: path, text: strings.Split(data, "\n"), pos: map[string][]int{}}
	f.norm = make([]string, len(f.text))
	f.info = make([]float64, len(f.text))
	f.toks = make([][]string, len(f.text))
	for i, t := range f.text {
		n := normalize(t)
		f.norm[i] = n
		f.info[i] = information(n)
		f.pos[n] = append(f.pos[n], i)
	}
	return f
}

func (f *srcFile) tokens(j int) []string {
	if f.toks[j] == nil {
		f.toks[j] = tokenize(f.text[j])
	}
	return f.toks[j]
}

// normalize drops all whitespace: patches from mail archives lose
// indentation and collapse runs of spaces.
func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// information says how telling a line is, from 0.1 (a brace, a blank line)
// to 1 (a dozen characters or more).
func information(norm string) float64 {
	return math.Min(1, math.Max(0.1, float64(len(norm))/12))
}

// tokenize splits a line into words (identifiers, numbers) and single
// punctuation characters.
func tokenize(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		word := r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
		if word {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, s[start:i])
			start = -1
		}
		if !unicode.IsSpace(r) {
			out = append(out, string(r))
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// similarity is the Dice coefficient of two lines' tokens, a punctuation
// token weighing a quarter of a word: 1 for the same tokens, 0 for none in
// common.
func similarity(a, b []string) float64 {
	weight := func(t string) float64 {
		r := rune(t[0])
		if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return 1
		}
		return 0.25
	}
	have := map[string]int{}
	var total float64
	for _, t := range a {
		have[t]++
		total += weight(t)
	}
	var common float64
	for _, t := range b {
		total += weight(t)
		if have[t] > 0 {
			have[t]--
			common += weight(t)
		}
	}
	if total == 0 {
		return 0
	}
	return 2 * common / total
}

// similar is the similarity from which two lines count as one line changed.
const similar = 0.5

// imageLine is one line of a hunk's post-patch image.
type imageLine struct {
	norm  string
	toks  []string
	info  float64
	added int // index in the hunk's added lines, -1 for context
}

// weight is how much matching the line counts in f.
func (f *srcFile) weight(l *imageLine) float64 {
	w := l.info
	if n := len(f.pos[l.norm]); n > 1 {
		w /= 1 + math.Log(float64(n))
	}
	if l.added < 0 {
		w *= 0.7
	}
	return w
}

// sim compares an image line with line j of f.
func (f *srcFile) sim(l *imageLine, j int) float64 {
	if l.norm == f.norm[j] {
		return 1
	}
	if len(l.norm) < 4 || len(f.norm[j]) < 4 {
		return 0
	}
	return similarity(l.toks, f.tokens(j))
}

// placement is where an image was put in a file.
type placement struct {
	file *srcFile
	// score is the alignment's; second is the best score of the other
	// windows of the file, 0 when there are none.
	score, second float64
	// line and sim are, per image line, the file line it pairs with (-1
	// for none) and how similar the two are.
	line []int
	sim  []float64
}

// maxChunk bounds the image lines aligned at once: a larger image (a new
// file of thousands of lines) is placed in chunks.
const maxChunk = 300

// place finds img in f; nil when no line of it matches exactly.
func (f *srcFile) place(img []imageLine) *placement {
	p := &placement{file: f, line: make([]int, len(img)), sim: make([]float64, len(img))}
	for i := range p.line {
		p.line[i] = -1
	}
	found := false
	for lo := 0; lo < len(img); lo += maxChunk {
		chunk := img[lo:min(lo+maxChunk, len(img))]
		best, second, bestWin := alignment{}, 0.0, window{}
		for _, w := range f.windows(chunk) {
			a := f.align(chunk, w.lo, w.hi, nil)
			if a.score > best.score {
				second = max(second, best.score)
				best, bestWin = a, w
			} else {
				second = max(second, a.score)
			}
		}
		if best.score <= 0 {
			continue
		}
		// The best place elsewhere in the same window: the lines the best
		// alignment pairs may not pair again.
		mask := map[int]bool{}
		for _, pr := range best.pairs {
			mask[pr.j] = true
		}
		second = max(second, f.align(chunk, bestWin.lo, bestWin.hi, mask).score)
		found = true
		p.score += best.score
		p.second += second
		for _, pr := range best.pairs {
			p.line[lo+pr.i], p.sim[lo+pr.i] = pr.j, pr.sim
		}
	}
	if !found {
		return nil
	}
	return p
}

type window struct {
	lo, hi int
	weight float64
}

// windows returns the parts of f where img may be: around clusters of
// diagonals (file line minus image line) of exact matches of telling
// lines, the heaviest four, not overlapping.
func (f *srcFile) windows(img []imageLine) []window {
	type anchor struct {
		diag int
		w    float64
	}
	var anchors []anchor
	for i := range img {
		l := &img[i]
		occ := f.pos[l.norm]
		if l.info < 0.3 || len(occ) == 0 || len(occ) > 50 {
			continue
		}
		for _, j := range occ {
			anchors = append(anchors, anchor{j - i, f.weight(l)})
		}
	}
	if len(anchors) == 0 {
		return nil
	}
	sort.Slice(anchors, func(a, b int) bool { return anchors[a].diag < anchors[b].diag })
	n := len(img)
	const margin = 40
	var ws []window
	start := 0
	for k := 1; k <= len(anchors); k++ {
		if k < len(anchors) && anchors[k].diag-anchors[k-1].diag <= margin+n/4 {
			continue
		}
		w := window{lo: max(0, anchors[start].diag-margin), hi: min(len(f.text), anchors[k-1].diag+n+margin)}
		for _, a := range anchors[start:k] {
			w.weight += a.w
		}
		ws = append(ws, w)
		start = k
	}
	sort.Slice(ws, func(a, b int) bool { return ws[a].weight > ws[b].weight })
	var out []window
	for _, w := range ws {
		if len(out) == 4 {
			break
		}
		overlap := false
		for i := range out {
			if w.lo < out[i].hi && out[i].lo < w.hi {
				out[i].lo, out[i].hi = min(out[i].lo, w.lo), max(out[i].hi, w.hi)
				overlap = true
				break
			}
		}
		if !overlap {
			out = append(out, w)
		}
	}
	return out
}

type alignment struct {
	score float64
	pairs []pair
}

type pair struct {
	i, j int
	sim  float64
}

// align is the best local alignment of img with f's lines [lo, hi). An
// image line pairs with a file line (the same line, one changed since, or a
// mismatch), or with none (a line since removed); file lines in between
// are lines added since, cheap when they are blank or braces. File lines in
// mask pair with no line.
func (f *srcFile) align(img []imageLine, lo, hi int, mask map[int]bool) alignment {
	n, m := len(img), hi-lo
	if n == 0 || m <= 0 {
		return alignment{}
	}
	cols := m + 1
	H := make([]float64, (n+1)*cols)
	S := make([]float64, (n+1)*cols) // similarity of the pair at the cell
	from := make([]byte, (n+1)*cols)
	const (
		stop = iota
		diag
		gapFile
		gapImage
	)
	best, bi, bj := 0.0, 0, 0
	for i := 1; i <= n; i++ {
		l := &img[i-1]
		w := f.weight(l)
		for j := 1; j <= m; j++ {
			fj := lo + j - 1
			c := i*cols + j
			s := f.sim(l, fj)
			S[c] = s
			gap := 0.02 + 0.15*f.info[fj]
			var sub float64
			switch {
			case s == 1:
				sub = 2 * w
			case s >= similar:
				sub = (2*s - 0.6) * w
			default:
				// No cheaper than skipping both lines.
				sub = -(0.5*w + gap + 0.01)
			}
			h, fr := 0.0, byte(stop)
			if v := H[c-cols-1] + sub; v > h && !mask[fj] {
				h, fr = v, diag
			}
			// A file line that the image skips: added since.
			if v := H[c-1] - gap; v > h {
				h, fr = v, gapFile
			}
			// An image line that the file lacks: removed since.
			if v := H[c-cols] - 0.5*w; v > h {
				h, fr = v, gapImage
			}
			H[c], from[c] = h, fr
			if h > best {
				best, bi, bj = h, i, j
			}
		}
	}
	a := alignment{score: best}
	for i, j := bi, bj; i > 0 && j > 0; {
		c := i*cols + j
		switch from[c] {
		case stop:
			i = 0
		case diag:
			a.pairs = append(a.pairs, pair{i - 1, lo + j - 1, S[c]})
			i, j = i-1, j-1
		case gapFile:
			j--
		case gapImage:
			i--
		}
	}
	return a
}
