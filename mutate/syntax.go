package mutate

import (
	"strings"

	"github.com/scxcheck/scxcheck/mutate/ctoken"
)

// unit is a C source file as the operators see it: its code tokens, which
// bracket matches which, the simple statements and the conditions of if
// and while. It is not a parser: it knows enough of C's statement syntax
// to find where a statement begins and ends, and leaves the rest to the
// compiler (a mutant that does not compile is stillborn, not wrong).
type unit struct {
	src  string
	code []ctoken.Token
	// match is the index of the bracket matching an opening or closing
	// one, -1 for other tokens and unbalanced brackets (preprocessor
	// branches can leave some).
	match []int
	// parent is the index of the innermost bracket enclosing a token, -1
	// at the top.
	parent []int
	stmts  []stmt
	conds  []cond
	// byLine indexes the code tokens by the line they start on,
	// stmtsByLine the statements; swapped caches negatedBySwap.
	byLine      map[int][]int
	stmtsByLine map[int][]stmt
	swapped     map[int]bool
}

// stmt is a simple statement: tokens start to end, end its ';'.
type stmt struct {
	start, end int
	// body is set for the unbraced body of an if, else, for, while, do
	// or loop macro: removing it must leave a ';'.
	body bool
}

// cond is the condition of an if or while: kw the keyword, open and
// close its parentheses.
type cond struct{ kw, open, close int }

func parse(src string) (*unit, error) {
	toks, err := ctoken.Tokenize(src)
	if err != nil {
		return nil, err
	}
	u := &unit{src: src, code: ctoken.Code(toks)}
	u.brackets()
	u.scan()
	u.byLine, u.stmtsByLine = map[int][]int{}, map[int][]stmt{}
	for i, t := range u.code {
		u.byLine[t.Line] = append(u.byLine[t.Line], i)
	}
	for _, st := range u.stmts {
		l := u.code[st.start].Line
		u.stmtsByLine[l] = append(u.stmtsByLine[l], st)
	}
	return u, nil
}

var closers = map[string]string{"(": ")", "[": "]", "{": "}"}

func (u *unit) brackets() {
	n := len(u.code)
	u.match, u.parent = make([]int, n), make([]int, n)
	var stack []int
	for i, t := range u.code {
		u.match[i] = -1
		u.parent[i] = -1
		if len(stack) > 0 {
			u.parent[i] = stack[len(stack)-1]
		}
		if t.Kind != ctoken.Punct {
			continue
		}
		switch t.Text {
		case "(", "[", "{":
			stack = append(stack, i)
		case ")", "]", "}":
			// Pop to the opener this closes; openers left open in
			// between stay unmatched.
			for k := len(stack) - 1; k >= 0; k-- {
				if closers[u.code[stack[k]].Text] == t.Text {
					u.match[i], u.match[stack[k]] = stack[k], i
					stack = stack[:k]
					break
				}
			}
			if len(stack) > 0 {
				u.parent[i] = stack[len(stack)-1]
			} else {
				u.parent[i] = -1
			}
			if u.match[i] >= 0 {
				u.parent[i] = u.parent[u.match[i]]
			}
		}
	}
}

func (u *unit) is(i int, text string) bool { return i >= 0 && i < len(u.code) && u.code[i].Is(text) }

// group returns the index after the bracket group opened at i, or i+1 when
// i is no matched opener.
func (u *unit) group(i int) int {
	if u.match[i] > i {
		return u.match[i] + 1
	}
	return i + 1
}

// keywords that cannot start an expression statement or be a label.
var keywords = map[string]bool{
	"if": true, "else": true, "while": true, "for": true, "do": true, "switch": true, "case": true,
	"default": true, "return": true, "goto": true, "break": true, "continue": true, "sizeof": true,
}

// scan finds the simple statements and the conditions, in order.
func (u *unit) scan() {
	code, n := u.code, len(u.code)
	body := false
	for i := 0; i < n; {
		t := code[i]
		switch {
		case t.Is("if") || t.Is("while") || t.Is("for") || t.Is("switch"):
			if u.is(i+1, "(") && u.match[i+1] > i+1 {
				if t.Is("if") || t.Is("while") {
					u.conds = append(u.conds, cond{kw: i, open: i + 1, close: u.match[i+1]})
				}
				i = u.match[i+1] + 1
				body = i < n && !code[i].Is("{")
				continue
			}
			i++
			body = false
			continue
		case t.Is("else") || t.Is("do"):
			i++
			body = i < n && !code[i].Is("{") && !code[i].Is("if")
			continue
		case t.Is("{") || t.Is("}") || t.Is(";"):
			i++
			body = false
			continue
		case t.Is("case") || t.Is("default"):
			j := i + 1
			for j < n && !code[j].Is(":") && !code[j].Is(";") {
				j = u.group(j)
			}
			i = j + 1
			body = false
			continue
		case t.Kind == ctoken.Ident && !keywords[t.Text] && u.is(i+1, ":"):
			i += 2 // a label
			continue
		}
		i, body = u.simple(i, body)
	}
}

// simple records the simple statement at i and returns the index after
// it; for the header of a function or of a loop macro (which is no
// statement) it returns the index of what follows the header, and whether
// that is an unbraced body.
func (u *unit) simple(i int, body bool) (int, bool) {
	code, n := u.code, len(u.code)
	for j := i; j < n; {
		c := code[j]
		switch {
		case c.Is(";"):
			u.stmts = append(u.stmts, stmt{start: i, end: j, body: body})
			return j + 1, false
		case c.Is("{") && j > i && code[j-1].Is(")"):
			// A function's body, or a braced loop macro's: enter it.
			return j, false
		case c.Is("}"):
			return j, false // unbalanced: leave it to the caller
		case c.Is("(") && j == i+1 && code[i].Kind == ctoken.Ident && u.match[j] > j:
			// ident(...) followed by what starts a statement is a loop
			// macro (list_for_each_entry(...) stmt;) or a function's
			// header: what follows is the statement.
			k := u.match[j] + 1
			if k < n && (code[k].Kind == ctoken.Ident && !isAttribute(code[k].Text) || code[k].Is("{")) {
				return k, !code[k].Is("{")
			}
			j = k
		case c.Is("(") || c.Is("[") || c.Is("{"):
			j = u.group(j)
		default:
			j++
		}
	}
	return n, false
}

// isAttribute reports whether an identifier after a function's parameter
// list is an annotation, not a statement (void f(void) __acquires(x) {).
func isAttribute(s string) bool { return strings.HasPrefix(s, "__") }

// onLine returns the indexes of the code tokens that start on a line.
func (u *unit) onLine(line int) []int { return u.byLine[line] }

// text returns the source of tokens i to j (inclusive), whitespace as it is.
func (u *unit) text(i, j int) string { return u.src[u.code[i].Start:u.code[j].End] }

// assignOps are C's assignment operators.
var assignOps = map[string]bool{"=": true, "+=": true, "-=": true, "*=": true, "/=": true, "%=": true,
	"&=": true, "|=": true, "^=": true, "<<=": true, ">>=": true}

// topLevel returns the indexes between start and end (inclusive) that are
// not inside a bracket group opened in that range.
func (u *unit) topLevel(start, end int) []int {
	var out []int
	for j := start; j <= end; {
		out = append(out, j)
		if t := u.code[j]; t.Is("(") || t.Is("[") || t.Is("{") {
			if next := u.group(j); next <= end+1 {
				j = next
				continue
			}
		}
		j++
	}
	return out
}

// typeWords start a declaration.
var typeWords = map[string]bool{
	"struct": true, "union": true, "enum": true, "const": true, "volatile": true, "static": true,
	"extern": true, "unsigned": true, "signed": true, "int": true, "long": true, "short": true,
	"char": true, "bool": true, "void": true, "float": true, "double": true, "register": true,
	"typeof": true, "__typeof__": true, "auto": true, "typedef": true, "inline": true,
}

// isDecl reports whether the statement is a declaration: it starts with a
// type word, or with two identifiers (a typedef's name and a variable's),
// or an identifier, stars and an identifier (u64 *p).
func (u *unit) isDecl(s stmt) bool {
	code := u.code
	first := code[s.start]
	if first.Kind != ctoken.Ident || keywords[first.Text] {
		return false
	}
	if typeWords[first.Text] {
		return true
	}
	j := s.start + 1
	for j < s.end && code[j].Is("*") {
		j++
	}
	return j < s.end && code[j].Kind == ctoken.Ident && !keywords[code[j].Text]
}

// assignment returns the index of the statement's top-level assignment
// operator, -1 when it has none.
func (u *unit) assignment(s stmt) int {
	for _, j := range u.topLevel(s.start, s.end-1) {
		if t := u.code[j]; t.Kind == ctoken.Punct && assignOps[t.Text] {
			return j
		}
	}
	return -1
}
