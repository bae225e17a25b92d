// Package ctoken splits C source into tokens, as a C compiler's first phases
// see it: comments, string and character literals, preprocessor lines
// (with their backslash continuations) and numbers are single tokens, so
// that a caller editing code never touches the inside of a comment, a
// string or a macro definition by accident.
//
// It does not preprocess: macros are identifiers and calls like any other.
// Every token carries its byte offsets and its line, so that an edit can be
// made on the original text.
package ctoken

import (
	"fmt"
	"strings"
)

// Kind is what a token is.
type Kind int

// The kinds of tokens.
const (
	// Ident is an identifier or a keyword.
	Ident Kind = iota + 1
	// Number is a preprocessing number: 0, 0x1f, 10UL, 1e-3.
	Number
	// String is a string literal, with its prefix (L, u8, u, U) and quotes.
	String
	// Char is a character literal, with its prefix and quotes.
	Char
	// Punct is an operator or punctuator: ->, <<=, {, ;.
	Punct
	// Comment is a /* */ or // comment.
	Comment
	// Preproc is a whole preprocessor line, from its # to the end of its
	// last continued line (comments inside included).
	Preproc
)

var kindNames = map[Kind]string{Ident: "ident", Number: "number", String: "string", Char: "char",
	Punct: "punct", Comment: "comment", Preproc: "preproc"}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Token is one token of a source text.
type Token struct {
	Kind Kind
	Text string
	// Start and End are its byte offsets in the source: Text is
	// src[Start:End].
	Start, End int
	// Line is the line it starts on, EndLine the one it ends on (1-based).
	Line, EndLine int
}

// Is reports whether the token is code (not a comment or preprocessor
// line) with the given text.
func (t Token) Is(text string) bool {
	return (t.Kind == Punct || t.Kind == Ident) && t.Text == text
}

func (t Token) String() string { return fmt.Sprintf("%d:%s %q", t.Line, t.Kind, t.Text) }

// puncts are C's punctuators, longest first within each leading byte's
// candidates (the lexer takes the longest that matches).
var puncts = []string{
	"...", "<<=", ">>=",
	"->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
	"*=", "/=", "%=", "+=", "-=", "&=", "^=", "|=", "##",
	"[", "]", "(", ")", "{", "}", ".", "&", "*", "+", "-", "~", "!", "/", "%",
	"<", ">", "^", "|", "?", ":", ";", "=", ",", "#",
}

// Error is a tokenizing error: an unterminated comment or literal, or a
// byte that is no C token.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Tokenize splits src into tokens, comments and preprocessor lines
// included. Whitespace and backslash-newlines between tokens are dropped.
func Tokenize(src string) ([]Token, error) {
	l := lexer{src: src, line: 1}
	return l.run()
}

// Code returns the tokens that are code: neither comments nor
// preprocessor lines.
func Code(toks []Token) []Token {
	out := make([]Token, 0, len(toks))
	for _, t := range toks {
		if t.Kind != Comment && t.Kind != Preproc {
			out = append(out, t)
		}
	}
	return out
}

type lexer struct {
	src  string
	pos  int
	line int
	// lineStart is true while only whitespace has been seen on the
	// current line: a # there starts a preprocessor line.
	lineStart bool
}

func (l *lexer) errorf(format string, args ...any) error {
	return &Error{Line: l.line, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) run() ([]Token, error) {
	var out []Token
	l.lineStart = true
	for {
		l.skipSpace()
		if l.pos >= len(l.src) {
			return out, nil
		}
		start, line := l.pos, l.line
		kind, err := l.next()
		if err != nil {
			return nil, err
		}
		out = append(out, Token{Kind: kind, Text: l.src[start:l.pos], Start: start, End: l.pos, Line: line, EndLine: l.line})
	}
}

// skipSpace skips whitespace and backslash-newlines, tracking lines.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch c := l.src[l.pos]; {
		case c == '\n':
			l.line++
			l.pos++
			l.lineStart = true
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '\\' && l.continuation(l.pos):
			l.pos = l.afterContinuation(l.pos)
			l.line++
		default:
			return
		}
	}
}

// continuation reports whether a backslash at i ends its line.
func (l *lexer) continuation(i int) bool {
	j := i + 1
	if j < len(l.src) && l.src[j] == '\r' {
		j++
	}
	return j < len(l.src) && l.src[j] == '\n'
}

func (l *lexer) afterContinuation(i int) int {
	j := i + 1
	if l.src[j] == '\r' {
		j++
	}
	return j + 1
}

func (l *lexer) next() (Kind, error) {
	src, c := l.src, l.src[l.pos]
	switch {
	case c == '#' && l.lineStart:
		l.preproc()
		return Preproc, nil
	case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '*':
		// A comment leaves l.lineStart as it is: "/* x */ #define" is
		// a directive.
		end := strings.Index(src[l.pos+2:], "*/")
		if end < 0 {
			return 0, l.errorf("unterminated /* comment")
		}
		l.advance(l.pos + 2 + end + 2)
		return Comment, nil
	case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '/':
		l.lineComment()
		return Comment, nil
	}
	l.lineStart = false
	switch {
	case c == '"' || c == '\'':
		return l.literal(c)
	case isIdentStart(c):
		// A prefix makes the literal that follows a wide one: L"x", u8'x'.
		j := l.pos
		for j < len(src) && isIdent(src[j]) {
			j++
		}
		word := src[l.pos:j]
		if j < len(src) && (src[j] == '"' || src[j] == '\'') && (word == "L" || word == "u" || word == "U" || word == "u8") {
			l.pos = j
			return l.literal(src[j])
		}
		l.pos = j
		return Ident, nil
	case isDigit(c) || c == '.' && l.pos+1 < len(src) && isDigit(src[l.pos+1]):
		l.number()
		return Number, nil
	}
	for _, p := range puncts {
		if strings.HasPrefix(src[l.pos:], p) {
			l.pos += len(p)
			return Punct, nil
		}
	}
	return 0, l.errorf("unexpected character %q", c)
}

// advance moves to end, counting the lines passed.
func (l *lexer) advance(end int) {
	l.line += strings.Count(l.src[l.pos:end], "\n")
	l.pos = end
}

// lineComment reads a // comment to the end of its line (a backslash
// continues it, as in C).
func (l *lexer) lineComment() {
	for l.pos < len(l.src) && l.src[l.pos] != '\n' {
		if l.src[l.pos] == '\\' && l.continuation(l.pos) {
			l.pos = l.afterContinuation(l.pos)
			l.line++
			continue
		}
		l.pos++
	}
}

// literal reads a string or character literal opened by q at l.pos.
func (l *lexer) literal(q byte) (Kind, error) {
	kind, what := String, "string"
	if q == '\'' {
		kind, what = Char, "character"
	}
	line := l.line
	l.pos++
	for l.pos < len(l.src) {
		switch c := l.src[l.pos]; c {
		case '\\':
			if l.continuation(l.pos) {
				l.pos = l.afterContinuation(l.pos)
				l.line++
				continue
			}
			l.pos += 2
		case '\n':
			return 0, &Error{Line: line, Msg: "unterminated " + what + " literal"}
		case q:
			l.pos++
			return kind, nil
		default:
			l.pos++
		}
	}
	return 0, &Error{Line: line, Msg: "unterminated " + what + " literal"}
}

// number reads a preprocessing number: digits, letters, underscores, dots
// and the sign of an exponent (1e-3, 0x1p+4).
func (l *lexer) number() {
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		switch {
		case (c == '+' || c == '-') && l.pos > 0 && strings.ContainsRune("eEpP", rune(src[l.pos-1])):
			l.pos++
		case isIdent(c) || c == '.':
			l.pos++
		default:
			return
		}
	}
}

// preproc reads a preprocessor line: to the end of the line, continued by
// backslash-newlines, with comments (which may span lines) inside.
func (l *lexer) preproc() {
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		switch {
		case c == '\n':
			return
		case c == '\\' && l.continuation(l.pos):
			l.pos = l.afterContinuation(l.pos)
			l.line++
		case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '*':
			end := strings.Index(src[l.pos+2:], "*/")
			if end < 0 {
				l.advance(len(src))
				return
			}
			l.advance(l.pos + 2 + end + 2)
		case c == '/' && l.pos+1 < len(src) && src[l.pos+1] == '/':
			l.lineComment()
			return
		case c == '"' || c == '\'':
			// A literal in a directive; an unterminated one (an
			// apostrophe in #error text) ends at the line's end.
			save, line := l.pos, l.line
			if _, err := l.literal(c); err != nil {
				l.pos, l.line = save+1, line
			}
		default:
			l.pos++
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
