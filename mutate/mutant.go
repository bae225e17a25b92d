package mutate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/mutate/ctoken"
)

// Operator is a kind of mutation: a slip a programmer makes.
type Operator string

// The operators, in the order Generate applies them to a line.
const (
	// NegateCondition negates the condition of an if or while:
	// if (x) → if (!(x)).
	NegateCondition Operator = "negate-condition"
	// SwapRelational swaps a comparison for its neighbour: < and <=,
	// > and >=, == and !=.
	SwapRelational Operator = "swap-relational"
	// DropOperand drops one operand of && or || with the operator.
	DropOperand Operator = "drop-operand"
	// OffByOne moves a constant bound of a comparison by one.
	OffByOne Operator = "off-by-one"
	// ReplaceReturn replaces a returned value: true and false swap, 0
	// becomes -EINVAL, an error code, a variable or an expression 0.
	ReplaceReturn Operator = "replace-return"
	// RemoveCall removes a call statement (a callback, an error report).
	RemoveCall Operator = "remove-call"
	// DeleteAssignment deletes an assignment, an increment or a decrement.
	DeleteAssignment Operator = "delete-assignment"
)

// Operators are all operators, in the order Generate applies them.
var Operators = []Operator{NegateCondition, SwapRelational, DropOperand, OffByOne, ReplaceReturn, RemoveCall, DeleteAssignment}

// Mutant is one small edit of one line of a source file.
type Mutant struct {
	// ID names the mutant, stably for the same source:
	// "<file>:<line>:<operator>", with ".<n>" when an operator edits the
	// line in several ways.
	ID   string `json:"id"`
	File string `json:"file"`
	Line int    `json:"line"`
	// Text is the line before the edit.
	Text     string   `json:"text"`
	Operator Operator `json:"operator"`
	// Description says what the edit does: "`!=` → `==`".
	Description string `json:"description"`
	// Diff is the edit as a unified diff of the file (a/ and b/
	// prefixes), which `patch -p1` applies to the tree.
	Diff string `json:"diff"`
	// Specs are the specs that executed the line (Select).
	Specs []string `json:"specs,omitempty"`
}

// Hash is a short hash of the mutant's diff: the same ID with another
// hash is another mutant (the source changed).
func (m *Mutant) Hash() string {
	h := sha256.Sum256([]byte(m.Diff))
	return hex.EncodeToString(h[:8])
}

// edit replaces src[start:end] with text.
type edit struct {
	start, end int
	text       string
}

// candidate is a mutant before it has an ID and a diff.
type candidate struct {
	op    Operator
	desc  string
	edits []edit
}

// Generate returns the mutants of the given lines of a C source file, path
// being its path relative to the tree (the diffs' path). A line gets the
// mutants of every operator that applies to the code starting on it; two
// edits giving the same text are one mutant. An error is a file that is
// no C (an unterminated comment or literal).
func Generate(path, src string, lines []int) ([]Mutant, error) {
	u, err := parse(src)
	if err != nil {
		return nil, fmt.Errorf("mutate %s: %w", path, err)
	}
	var out []Mutant
	// Texts are remembered by hash: a kernel file is large.
	seen := map[[32]byte]bool{sha256.Sum256([]byte(src)): true}
	srcLines := splitLines(src)
	for _, line := range lines {
		text := ""
		if line >= 1 && line <= len(srcLines) {
			text = srcLines[line-1]
		}
		counts := map[Operator]int{}
		var ms []Mutant
		for _, c := range u.candidates(line) {
			mutated := apply(src, c.edits)
			sum := sha256.Sum256([]byte(mutated))
			if seen[sum] {
				continue
			}
			seen[sum] = true
			counts[c.op]++
			ms = append(ms, Mutant{File: path, Line: line, Text: text, Operator: c.op, Description: c.desc,
				Diff: unifiedDiff(path, src, mutated), ID: strconv.Itoa(counts[c.op])})
		}
		for i := range ms {
			m := &ms[i]
			n := m.ID
			m.ID = fmt.Sprintf("%s:%d:%s", path, line, m.Operator)
			if counts[m.Operator] > 1 {
				m.ID += "." + n
			}
		}
		out = append(out, ms...)
	}
	return out, nil
}

// operatorEdits are the operators' implementations.
var operatorEdits = map[Operator]func(*unit, int) []candidate{
	NegateCondition:  (*unit).negateCondition,
	SwapRelational:   (*unit).swapRelational,
	DropOperand:      (*unit).dropOperand,
	OffByOne:         (*unit).offByOne,
	ReplaceReturn:    (*unit).replaceReturn,
	RemoveCall:       (*unit).removeCall,
	DeleteAssignment: (*unit).deleteAssignment,
}

// candidates returns the edits of every operator for the code on a line.
func (u *unit) candidates(line int) []candidate {
	var out []candidate
	for _, op := range Operators {
		out = append(out, operatorEdits[op](u, line)...)
	}
	return out
}

// short returns code collapsed to one line and cut to a readable length.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func (u *unit) negateCondition(line int) []candidate {
	var out []candidate
	for _, c := range u.conds {
		if u.code[c.kw].Line != line || c.close == c.open+1 {
			continue
		}
		inner := u.text(c.open+1, c.close-1)
		out = append(out, candidate{op: NegateCondition,
			desc: fmt.Sprintf("%s (%s) → %s (!(…))", u.code[c.kw].Text, short(inner), u.code[c.kw].Text),
			edits: []edit{
				{start: u.code[c.open+1].Start, end: u.code[c.open+1].Start, text: "!("},
				{start: u.code[c.close-1].End, end: u.code[c.close-1].End, text: ")"},
			}})
	}
	return out
}

var swaps = map[string]string{"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "=="}

// negatedBySwap returns the indexes of the == and != tokens that are the
// whole of an if or while condition (inside likely() or unlikely(), if
// any): swapping one is the same mutant as negating the condition.
func (u *unit) negatedBySwap() map[int]bool {
	if u.swapped != nil {
		return u.swapped
	}
	out := map[int]bool{}
	u.swapped = out
	for _, c := range u.conds {
		start, end := c.open+1, c.close-1
		if start < end && (u.is(start, "likely") || u.is(start, "unlikely")) && u.is(start+1, "(") && u.match[start+1] == end {
			start, end = start+2, end-1
		}
		if start > end {
			continue
		}
		cmp := -1
		for _, j := range u.topLevel(start, end) {
			t := u.code[j]
			if t.Kind != ctoken.Punct {
				continue
			}
			switch t.Text {
			case "==", "!=", "<", "<=", ">", ">=", "&&", "||", "?", ",", "=":
				if cmp >= 0 {
					cmp = -2
				} else if cmp == -1 {
					cmp = j
				}
			}
		}
		if cmp >= 0 && (u.code[cmp].Text == "==" || u.code[cmp].Text == "!=") {
			out[cmp] = true
		}
	}
	return out
}

func (u *unit) swapRelational(line int) []candidate {
	var out []candidate
	same := u.negatedBySwap()
	for _, i := range u.onLine(line) {
		t := u.code[i]
		if same[i] {
			continue // negate-condition is this mutant
		}
		if to, ok := swaps[t.Text]; ok && t.Kind == ctoken.Punct {
			out = append(out, candidate{op: SwapRelational, desc: fmt.Sprintf("`%s` → `%s`", t.Text, to),
				edits: []edit{{start: t.Start, end: t.End, text: to}}})
		}
	}
	return out
}

// operands returns the operands of the && and || chain that the token at
// i is in: token ranges [start, end], and ok false when the expression
// around it mixes in operators that make dropping an operand unsafe
// (?:, comma, assignment).
func (u *unit) operands(i int) (ranges [][2]int, ok bool) {
	start, end := -1, -1
	if p := u.parent[i]; p >= 0 && u.code[p].Is("(") && u.match[p] > p {
		start, end = p+1, u.match[p]-1
	} else {
		for _, s := range u.stmts {
			if s.start <= i && i < s.end {
				start, end = s.start, s.end-1
				if u.code[start].Is("return") {
					start++
				} else if a := u.assignment(s); a >= 0 && a < i {
					start = a + 1
				}
				break
			}
		}
	}
	if start < 0 || start > end {
		return nil, false
	}
	from := start
	for _, j := range u.topLevel(start, end) {
		t := u.code[j]
		switch {
		case t.Kind != ctoken.Punct:
		case t.Text == "&&" || t.Text == "||":
			if j == from {
				return nil, false
			}
			ranges = append(ranges, [2]int{from, j - 1})
			from = j + 1
		case t.Text == "?" || t.Text == ":" || t.Text == "," || assignOps[t.Text] || t.Text == ";" || t.Text == "{" || t.Text == "}":
			return nil, false
		}
	}
	if from > end {
		return nil, false
	}
	return append(ranges, [2]int{from, end}), true
}

func (u *unit) dropOperand(line int) []candidate {
	var out []candidate
	for _, i := range u.onLine(line) {
		t := u.code[i]
		if !t.Is("&&") && !t.Is("||") {
			continue
		}
		ranges, ok := u.operands(i)
		if !ok {
			continue
		}
		for k := 0; k+1 < len(ranges); k++ {
			l, r := ranges[k], ranges[k+1]
			if l[1]+1 != i {
				continue
			}
			out = append(out,
				candidate{op: DropOperand, desc: fmt.Sprintf("drop `%s %s`", short(u.text(l[0], l[1])), t.Text),
					edits: []edit{{start: u.code[l[0]].Start, end: u.code[r[0]].Start}}},
				candidate{op: DropOperand, desc: fmt.Sprintf("drop `%s %s`", t.Text, short(u.text(r[0], r[1]))),
					edits: []edit{{start: u.code[l[1]].End, end: u.code[r[1]].End}}})
		}
	}
	return out
}

// isConstant reports whether a token is a constant a bound can be: a
// number or an all-capitals identifier (a macro or an enum constant).
func isConstant(t ctoken.Token) bool {
	switch t.Kind {
	case ctoken.Number:
		return true
	case ctoken.Ident:
		letter := false
		for _, c := range t.Text {
			switch {
			case c >= 'A' && c <= 'Z':
				letter = true
			case c == '_' || c >= '0' && c <= '9':
			default:
				return false
			}
		}
		return letter && len(t.Text) > 1
	}
	return false
}

var (
	rightEnds  = map[string]bool{")": true, ";": true, "&&": true, "||": true, ",": true, "?": true, ":": true, "]": true}
	leftStarts = map[string]bool{"(": true, "&&": true, "||": true, ",": true, "?": true, ":": true, "=": true, "return": true, "[": true}
)

// bump returns a constant moved by d (+1 or -1): a plain number computed,
// anything else in parentheses; "" for 0 - 1.
func bump(s string, d int) string {
	base := 10
	digits := s
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		base, digits = 16, s[2:]
	}
	if v, err := strconv.ParseUint(digits, base, 63); err == nil && (base == 16 || !strings.HasPrefix(s, "0") || s == "0") {
		if d < 0 && v == 0 {
			return ""
		}
		n := uint64(int64(v) + int64(d))
		if base == 16 {
			return "0x" + strconv.FormatUint(n, 16)
		}
		return strconv.FormatUint(n, 10)
	}
	if d > 0 {
		return "(" + s + " + 1)"
	}
	return "(" + s + " - 1)"
}

func (u *unit) offByOne(line int) []candidate {
	var out []candidate
	for _, i := range u.onLine(line) {
		t := u.code[i]
		if t.Kind != ctoken.Punct || t.Text != "<" && t.Text != "<=" && t.Text != ">" && t.Text != ">=" {
			continue
		}
		var c int
		switch {
		case i+2 < len(u.code) && isConstant(u.code[i+1]) && rightEnds[u.code[i+2].Text]:
			c = i + 1
		case i >= 2 && isConstant(u.code[i-1]) && leftStarts[u.code[i-2].Text]:
			c = i - 1
		default:
			continue
		}
		k := u.code[c]
		for _, d := range []int{+1, -1} {
			if to := bump(k.Text, d); to != "" {
				out = append(out, candidate{op: OffByOne, desc: fmt.Sprintf("`%s` → `%s` in `%s`", k.Text, to, t.Text),
					edits: []edit{{start: k.Start, end: k.End, text: to}}})
			}
		}
	}
	return out
}

// stmtsAt returns the statements that start on a line.
func (u *unit) stmtsAt(line int) []stmt { return u.stmtsByLine[line] }

func (u *unit) replaceReturn(line int) []candidate {
	var out []candidate
	for _, s := range u.stmtsAt(line) {
		if !u.code[s.start].Is("return") || s.end == s.start+1 {
			continue
		}
		first, last := s.start+1, s.end-1
		value := u.text(first, last)
		var to string
		switch {
		case value == "true":
			to = "false"
		case value == "false":
			to = "true"
		case value == "0":
			to = "-EINVAL"
		case value == "NULL":
			continue
		default:
			to = "0"
		}
		out = append(out, candidate{op: ReplaceReturn, desc: fmt.Sprintf("return %s → return %s", short(value), to),
			edits: []edit{{start: u.code[first].Start, end: u.code[last].End, text: to}}})
	}
	return out
}

// keptCall reports whether a call is not worth removing: it declares,
// asserts what correct code never breaks (removing it changes nothing a
// spec can see), or checks only in debugging kernels.
func keptCall(name string) bool {
	for _, p := range []string{"DEFINE_", "DECLARE_", "WARN", "BUG_ON", "VM_WARN", "VM_BUG", "lockdep_", "BUILD_BUG_ON", "might_sleep", "__"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (u *unit) removeCall(line int) []candidate {
	var out []candidate
	for _, s := range u.stmtsAt(line) {
		first := u.code[s.start]
		if first.Kind != ctoken.Ident || keywords[first.Text] || keptCall(first.Text) || u.isDecl(s) ||
			u.assignment(s) >= 0 || !u.is(s.end-1, ")") {
			continue
		}
		// ident (. or -> ident)* (
		j := s.start + 1
		for j+1 < s.end && (u.code[j].Is(".") || u.code[j].Is("->")) && u.code[j+1].Kind == ctoken.Ident {
			j += 2
		}
		if !u.is(j, "(") {
			continue
		}
		out = append(out, candidate{op: RemoveCall, desc: fmt.Sprintf("remove `%s`", short(u.text(s.start, s.end))),
			edits: []edit{u.removeStmt(s)}})
	}
	return out
}

func (u *unit) deleteAssignment(line int) []candidate {
	var out []candidate
	for _, s := range u.stmtsAt(line) {
		code := u.code
		incDec := func(i int) bool { return code[i].Is("++") || code[i].Is("--") }
		switch {
		case code[s.start].Is("return") || u.isDecl(s):
			continue
		case u.assignment(s) >= 0, incDec(s.start), s.end-1 > s.start && incDec(s.end-1):
		default:
			continue
		}
		out = append(out, candidate{op: DeleteAssignment, desc: fmt.Sprintf("delete `%s`", short(u.text(s.start, s.end))),
			edits: []edit{u.removeStmt(s)}})
	}
	return out
}

// removeStmt returns the edit that removes a statement: its whole lines
// when it has them to itself (a comment after it goes too), else its
// text; the unbraced body of an if or a loop becomes ";".
func (u *unit) removeStmt(s stmt) edit {
	start, end := u.code[s.start].Start, u.code[s.end].End
	if s.body {
		return edit{start: start, end: end, text: ";"}
	}
	ls := strings.LastIndexByte(u.src[:start], '\n') + 1
	le := strings.IndexByte(u.src[end:], '\n')
	if le < 0 {
		le = len(u.src) - end
	}
	before, after := u.src[ls:start], strings.TrimSpace(u.src[end:end+le])
	if strings.TrimSpace(before) != "" {
		return edit{start: start, end: end}
	}
	if after == "" || strings.HasPrefix(after, "//") || strings.HasPrefix(after, "/*") && strings.HasSuffix(after, "*/") && !strings.Contains(after[2:len(after)-2], "*/") {
		return edit{start: ls, end: min(end+le+1, len(u.src))}
	}
	return edit{start: start, end: end}
}

// apply makes the edits (which do not overlap) to src.
func apply(src string, edits []edit) string {
	sorted := append([]edit(nil), edits...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].start > sorted[j].start })
	for _, e := range sorted {
		src = src[:e.start] + e.text + src[e.end:]
	}
	return src
}

// diffContext is how many unchanged lines a diff shows around a change.
const diffContext = 3

// unifiedDiff returns the unified diff (one hunk, a/ and b/ prefixes) from
// old to new, two versions of path that differ in one region.
func unifiedDiff(path, old, new string) string {
	a, b := splitLines(old), splitLines(new)
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	s := 0
	for s < len(a)-p && s < len(b)-p && a[len(a)-1-s] == b[len(b)-1-s] {
		s++
	}
	start := max(0, p-diffContext)
	aEnd, bEnd := min(len(a), len(a)-s+diffContext), min(len(b), len(b)-s+diffContext)
	var w strings.Builder
	fmt.Fprintf(&w, "--- a/%s\n+++ b/%s\n", path, path)
	fmt.Fprintf(&w, "@@ -%s +%s @@\n", hunkRange(start, aEnd-start), hunkRange(start, bEnd-start))
	line := func(prefix, text string, last bool, noEOL bool) {
		w.WriteString(prefix + text + "\n")
		if last && noEOL {
			w.WriteString("\\ No newline at end of file\n")
		}
	}
	noEOLa, noEOLb := !strings.HasSuffix(old, "\n"), !strings.HasSuffix(new, "\n")
	for i := start; i < p; i++ {
		line(" ", a[i], false, false)
	}
	for i := p; i < len(a)-s; i++ {
		line("-", a[i], i == len(a)-1, noEOLa)
	}
	for i := p; i < len(b)-s; i++ {
		line("+", b[i], i == len(b)-1, noEOLb)
	}
	for i := len(a) - s; i < aEnd; i++ {
		line(" ", a[i], i == len(a)-1, noEOLa)
	}
	return w.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// splitLines splits text into lines without their newlines.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
