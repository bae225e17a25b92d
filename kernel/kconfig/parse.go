package kconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Rules are what scxcheck reads of a tree's Kconfig files: enough to say why
// olddefconfig dropped a symbol, not a full Kconfig implementation.
type Rules struct {
	defs      map[string][]*symDef // by symbol name, without CONFIG_
	selectors map[string][]selectBy
	missing   []string // sourced files that do not exist
}

// symDef is one "config SYM" or "menuconfig SYM" entry.
type symDef struct {
	name    string
	file    string // relative to the tree
	line    int
	typ     string   // bool, tristate, string, int, hex; "" if not given here
	prompt  bool     // has a prompt, so a user (or a fragment) can set it
	deps    []string // depends on, with those of enclosing if, menu and choice blocks
	choice  bool     // an option of a choice
	defYes  []string // conditions ("" = always) of defaults that are y
	hasDefs bool     // has any default at all
}

// selectBy is a "select SYM [if COND]" in the entry of By.
type selectBy struct {
	By, Cond string
}

// ReadRules reads the Kconfig files of the tree at dir for arch x86,
// starting at dir/Kconfig and following source statements.
func ReadRules(dir string) (*Rules, error) {
	k := &Rules{defs: map[string][]*symDef{}, selectors: map[string][]selectBy{}}
	p := &kparser{k: k, root: dir, vars: map[string]string{
		"SRCARCH": "x86", "ARCH": "x86_64", "HEADER_ARCH": "x86", "KCONFIG_EXT_PREFIX": "",
	}, seen: map[string]bool{}}
	if err := p.file("Kconfig", true); err != nil {
		return nil, err
	}
	return k, nil
}

// DependsMet reports whether sym is defined and every dependency of every
// definition of it holds in cfg: roughly whether olddefconfig keeps it set
// (tests' fake make uses it).
func (k *Rules) DependsMet(sym string, cfg map[string]string) bool {
	defs := k.defs[sym]
	for _, d := range defs {
		for _, dep := range d.deps {
			if eval(dep, cfg) == triN {
				return false
			}
		}
	}
	return len(defs) > 0
}

type kparser struct {
	k    *Rules
	root string
	vars map[string]string
	seen map[string]bool
	// blocks is the stack of enclosing if/menu/choice blocks, each with
	// the conditions it adds to the entries inside it.
	blocks []kblock
}

type kblock struct {
	kind  string // if, menu, choice
	conds []string
}

func (p *kparser) enclosing() []string {
	var conds []string
	for _, b := range p.blocks {
		conds = append(conds, b.conds...)
	}
	return conds
}

func (p *kparser) inChoice() bool {
	for _, b := range p.blocks {
		if b.kind == "choice" {
			return true
		}
	}
	return false
}

// expand replaces $(VAR) with the known variables; other macros become "".
func (p *kparser) expand(s string) string {
	for {
		i := strings.Index(s, "$(")
		if i < 0 {
			return s
		}
		j := strings.IndexByte(s[i:], ')')
		if j < 0 {
			return s
		}
		s = s[:i] + p.vars[s[i+2:i+j]] + s[i+j+1:]
	}
}

func (p *kparser) file(rel string, required bool) error {
	path := filepath.Join(p.root, rel)
	if p.seen[path] {
		return nil
	}
	p.seen[path] = true
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && !required {
		p.k.missing = append(p.k.missing, rel)
		return nil
	}
	if err != nil {
		return fmt.Errorf("read Kconfig: %w", err)
	}

	var cur *symDef      // the config entry being read
	var curBlock *kblock // a menu or choice whose header is being read
	helpIndent := -1     // inside help text: the indentation it must keep
	inHelp := false
	lineNo := 0
	lines := strings.Split(string(data), "\n")
	for idx := 0; idx < len(lines); idx++ {
		raw := lines[idx]
		lineNo = idx + 1
		// Backslash continuations.
		for strings.HasSuffix(raw, "\\") && idx+1 < len(lines) {
			idx++
			raw = strings.TrimSuffix(raw, "\\") + " " + lines[idx]
		}
		if inHelp {
			if strings.TrimSpace(raw) == "" {
				continue
			}
			ind := indentWidth(raw)
			if helpIndent < 0 {
				helpIndent = ind
			}
			if ind >= helpIndent {
				continue
			}
			inHelp = false
		}
		line := strings.TrimSpace(stripComment(raw))
		if line == "" {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		kw, _, _ = strings.Cut(kw, "\t")
		rest = strings.TrimSpace(strings.TrimPrefix(line, kw))
		switch kw {
		case "config", "menuconfig":
			curBlock = nil
			cur = &symDef{name: rest, file: rel, line: lineNo, deps: p.enclosing(), choice: p.inChoice()}
			p.k.defs[rest] = append(p.k.defs[rest], cur)
		case "bool", "tristate", "string", "int", "hex":
			if cur != nil {
				cur.typ = kw
				if rest != "" {
					cur.prompt = true
				}
			}
		case "def_bool", "def_tristate":
			if cur != nil {
				cur.typ = strings.TrimPrefix(kw, "def_")
				p.addDefault(cur, rest)
			}
		case "prompt":
			if cur != nil {
				cur.prompt = true
			}
		case "default":
			if cur != nil {
				p.addDefault(cur, rest)
			}
		case "depends":
			expr := normalizeSpace(strings.TrimPrefix(rest, "on"))
			switch {
			case cur != nil:
				cur.deps = append(cur.deps, expr)
			case curBlock != nil:
				curBlock.conds = append(curBlock.conds, expr)
			}
		case "visible":
			if curBlock != nil {
				curBlock.conds = append(curBlock.conds, normalizeSpace(strings.TrimPrefix(rest, "if")))
			}
		case "select":
			if cur != nil {
				sym, cond, _ := strings.Cut(rest, " if ")
				p.k.selectors[strings.TrimSpace(sym)] = append(p.k.selectors[strings.TrimSpace(sym)],
					selectBy{By: cur.name, Cond: normalizeSpace(cond)})
			}
		case "help", "---help---":
			inHelp, helpIndent = true, -1
		case "if":
			cur, curBlock = nil, nil
			p.blocks = append(p.blocks, kblock{kind: "if", conds: []string{normalizeSpace(rest)}})
		case "menu":
			cur = nil
			p.blocks = append(p.blocks, kblock{kind: "menu"})
			curBlock = &p.blocks[len(p.blocks)-1]
		case "choice":
			cur = nil
			p.blocks = append(p.blocks, kblock{kind: "choice"})
			curBlock = &p.blocks[len(p.blocks)-1]
		case "endif", "endmenu", "endchoice":
			cur, curBlock = nil, nil
			if n := len(p.blocks); n > 0 {
				p.blocks = p.blocks[:n-1]
			}
		case "comment", "mainmenu":
			cur, curBlock = nil, nil
		case "source", "osource", "rsource", "orsource":
			cur, curBlock = nil, nil
			src := p.expand(strings.Trim(rest, `"`))
			if strings.HasPrefix(kw, "r") || strings.HasPrefix(kw, "or") {
				src = filepath.Join(filepath.Dir(rel), src)
			}
			optional := strings.HasPrefix(kw, "o")
			matches := []string{src}
			if strings.ContainsAny(src, "*?[") {
				matches = nil
				abs, _ := filepath.Glob(filepath.Join(p.root, src))
				for _, a := range abs {
					r, _ := filepath.Rel(p.root, a)
					matches = append(matches, r)
				}
			}
			// The if/menu blocks around a source statement apply to the
			// file sourced; blocks opened inside it must close there.
			depth := len(p.blocks)
			for _, m := range matches {
				if err := p.file(m, !optional); err != nil {
					return err
				}
			}
			p.blocks = p.blocks[:min(depth, len(p.blocks))]
		}
	}
	return nil
}

func (p *kparser) addDefault(cur *symDef, rest string) {
	cur.hasDefs = true
	val, cond, _ := strings.Cut(rest, " if ")
	if strings.TrimSpace(val) == "y" {
		cur.defYes = append(cur.defYes, strings.TrimSpace(cond))
	}
}

func normalizeSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// stripComment removes a # comment that is not inside quotes.
func stripComment(s string) string {
	inQuote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote != 0 && c == '\\':
			i++
		case inQuote != 0 && c == inQuote:
			inQuote = 0
		case inQuote == 0 && (c == '"' || c == '\''):
			inQuote = c
		case inQuote == 0 && c == '#':
			return s[:i]
		}
	}
	return s
}

func indentWidth(s string) int {
	w := 0
	for _, c := range s {
		switch c {
		case ' ':
			w++
		case '\t':
			w = (w/8 + 1) * 8
		default:
			return w
		}
	}
	return w
}

// Tristate values.
const (
	triN = 0
	triM = 1
	triY = 2
)

// symValue returns a symbol's value in cfg ("CONFIG_"-prefixed keys), "n"
// when unset.
func symValue(cfg map[string]string, sym string) string {
	v, ok := cfg["CONFIG_"+sym]
	if !ok || v == "" {
		return "n"
	}
	return strings.Trim(v, `"`)
}

// eval evaluates a Kconfig expression against cfg as a tristate.
func eval(expr string, cfg map[string]string) int {
	e := &exprParser{toks: tokenize(expr), cfg: cfg}
	v := e.or()
	return v
}

type exprParser struct {
	toks []string
	pos  int
	cfg  map[string]string
}

func (e *exprParser) peek() string {
	if e.pos < len(e.toks) {
		return e.toks[e.pos]
	}
	return ""
}

func (e *exprParser) next() string {
	t := e.peek()
	e.pos++
	return t
}

// or and and parse operands joined by || and &&: a tristate's maximum
// and minimum.
func (e *exprParser) or() int {
	return e.joined("||", e.and, func(a, b int) int { return max(a, b) })
}

func (e *exprParser) and() int {
	return e.joined("&&", e.unary, func(a, b int) int { return min(a, b) })
}

func (e *exprParser) joined(op string, operand func() int, join func(a, b int) int) int {
	v := operand()
	for e.peek() == op {
		e.next()
		v = join(v, operand())
	}
	return v
}

func (e *exprParser) unary() int {
	switch e.peek() {
	case "!":
		e.next()
		return triY - e.unary()
	case "(":
		e.next()
		v := e.or()
		if e.peek() == ")" {
			e.next()
		}
		return v
	}
	left := e.next()
	switch op := e.peek(); op {
	case "=", "!=", "<", "<=", ">", ">=":
		e.next()
		right := e.next()
		return compare(e.value(left), op, e.value(right))
	}
	return tri(e.value(left))
}

// value is the value of a symbol or constant token.
func (e *exprParser) value(tok string) string {
	if strings.HasPrefix(tok, `"`) || strings.HasPrefix(tok, "'") {
		return strings.Trim(tok, `"'`)
	}
	switch tok {
	case "y", "m", "n":
		return tok
	}
	if isNumber(tok) {
		return tok
	}
	return symValue(e.cfg, tok)
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return len(s) > 2
	}
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func tri(v string) int {
	switch v {
	case "y":
		return triY
	case "m":
		return triM
	}
	return triN
}

func compare(a, op, b string) int {
	c := strings.Compare(a, b)
	if x, err := strconv.ParseInt(a, 0, 64); err == nil {
		if y, err := strconv.ParseInt(b, 0, 64); err == nil {
			c = cmpInt(x, y)
		}
	}
	ok := false
	switch op {
	case "=":
		ok = c == 0
	case "!=":
		ok = c != 0
	case "<":
		ok = c < 0
	case "<=":
		ok = c <= 0
	case ">":
		ok = c > 0
	case ">=":
		ok = c >= 0
	}
	if ok {
		return triY
	}
	return triN
}

func cmpInt(x, y int64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// tokenize splits a Kconfig expression into symbols, constants and
// operators.
func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(s) && s[j] != c {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			toks = append(toks, s[i:min(j+1, len(s))])
			i = j + 1
		case strings.HasPrefix(s[i:], "&&"), strings.HasPrefix(s[i:], "||"),
			strings.HasPrefix(s[i:], "!="), strings.HasPrefix(s[i:], "<="), strings.HasPrefix(s[i:], ">="):
			toks = append(toks, s[i:i+2])
			i += 2
		case strings.ContainsRune("!()=<>", rune(c)):
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t!()=<>&|\"'", rune(s[j])) {
				j++
			}
			if j == i { // a lone & or |
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

// conjuncts splits an expression at its top-level && operators.
func conjuncts(expr string) []string {
	var parts []string
	depth, start := 0, 0
	toks := tokenize(expr)
	for i, t := range toks {
		switch t {
		case "(":
			depth++
		case ")":
			depth--
		case "&&":
			if depth == 0 {
				parts = append(parts, joinTokens(toks[start:i]))
				start = i + 1
			}
		}
	}
	parts = append(parts, joinTokens(toks[start:]))
	// A conjunct wholly in parentheses may itself be a conjunction.
	var out []string
	for _, p := range parts {
		if t := tokenize(p); len(t) > 2 && t[0] == "(" && t[len(t)-1] == ")" && balanced(t[1:len(t)-1]) {
			inner := joinTokens(t[1 : len(t)-1])
			if sub := conjuncts(inner); len(sub) > 1 {
				out = append(out, sub...)
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// joinTokens writes tokens back as an expression: "(A || !B)".
func joinTokens(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t != ")" && toks[i-1] != "(" && toks[i-1] != "!" {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String()
}

func balanced(toks []string) bool {
	depth := 0
	for _, t := range toks {
		if t == "(" {
			depth++
		} else if t == ")" && depth == 0 {
			return false
		} else if t == ")" {
			depth--
		}
	}
	return depth == 0
}

// symbols returns the symbol names an expression refers to, in order.
func symbols(expr string) []string {
	var syms []string
	for _, t := range tokenize(expr) {
		if t == "" || strings.ContainsAny(t[:1], `"'!()=<>&|`) || isNumber(t) {
			continue
		}
		switch t {
		case "y", "m", "n":
			continue
		}
		if !slices.Contains(syms, t) {
			syms = append(syms, t)
		}
	}
	return syms
}
