package ctoken_test

import (
	"os"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/mutate/ctoken"
)

func kinds(toks []ctoken.Token) string {
	var b []string
	for _, t := range toks {
		b = append(b, t.Kind.String()+":"+t.Text)
	}
	return strings.Join(b, " ")
}

func TestTokens(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a->b <<= 2;", "ident:a punct:-> ident:b punct:<<= number:2 punct:;"},
		{"x<=y>=z==w!=v&&u||t", "ident:x punct:<= ident:y punct:>= ident:z punct:== ident:w punct:!= ident:v punct:&& ident:u punct:|| ident:t"},
		{`s = "a < b /* not */ \" ok";`, `ident:s punct:= string:"a < b /* not */ \" ok" punct:;`},
		{`c = '\'' + L'x' + u8"y";`, `ident:c punct:= char:'\'' punct:+ char:L'x' punct:+ string:u8"y" punct:;`},
		{"n = 0x1fUL + 1e-3 + .5f;", "ident:n punct:= number:0x1fUL punct:+ number:1e-3 punct:+ number:.5f punct:;"},
		{"a /* if (x < y) */ < b // c != d\n;", "ident:a comment:/* if (x < y) */ punct:< ident:b comment:// c != d punct:;"},
		{"#define A(x) \\\n\tif ((x) < 2) \\\n\t\tfoo()\nA(1);", "preproc:#define A(x) \\\n\tif ((x) < 2) \\\n\t\tfoo() ident:A punct:( number:1 punct:) punct:;"},
		{"  # include <linux/a.h> /* x\n y */\nint", "preproc:# include <linux/a.h> /* x\n y */ ident:int"},
		{"/* c */ #if X\nz", "comment:/* c */ preproc:#if X ident:z"},
		{"a # b", "ident:a punct:# ident:b"},
		{"#error it's broken\nx", "preproc:#error it's broken ident:x"},
		{"f(a,\\\n b)", "ident:f punct:( ident:a punct:, ident:b punct:)"},
		{"x...y", "ident:x punct:... ident:y"},
	} {
		toks, err := ctoken.Tokenize(tc.src)
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		if got := kinds(toks); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
		for _, tok := range toks {
			if tc.src[tok.Start:tok.End] != tok.Text {
				t.Errorf("%q: token %v at %d-%d", tc.src, tok, tok.Start, tok.End)
			}
		}
	}
}

func TestLines(t *testing.T) {
	src := "a\n/* x\ny */ b\n#define M \\\n 1\nc \"s\" d\n"
	toks, err := ctoken.Tokenize(src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"a": {1, 1}, "/* x\ny */": {2, 3}, "b": {3, 3}, "#define M \\\n 1": {4, 5}, "c": {6, 6}, `"s"`: {6, 6}, "d": {6, 6}}
	for _, tok := range toks {
		w, ok := want[tok.Text]
		if !ok {
			t.Errorf("unexpected token %v", tok)
			continue
		}
		if tok.Line != w[0] || tok.EndLine != w[1] {
			t.Errorf("%q: lines %d-%d, want %d-%d", tok.Text, tok.Line, tok.EndLine, w[0], w[1])
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"a /* b", "line 1: unterminated /* comment"},
		{"a\n\"b\nc\"", "line 2: unterminated string literal"},
		{"x = 'a;\n", "line 1: unterminated character literal"},
		{"a @ b", `line 1: unexpected character '@'`},
	} {
		_, err := ctoken.Tokenize(tc.src)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %s", tc.src, err, tc.want)
		}
	}
}

// TestSnippets tokenizes the committed C snippets: every byte that is not
// whitespace is in exactly one token, in order.
func TestSnippets(t *testing.T) {
	for _, name := range []string{"../testdata/distant.c", "../testdata/tricky.c"} {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		src := string(data)
		toks, err := ctoken.Tokenize(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pos := 0
		for _, tok := range toks {
			if gap := src[pos:tok.Start]; strings.TrimSpace(strings.ReplaceAll(gap, "\\\n", "")) != "" {
				t.Errorf("%s: %q between tokens before %v", name, gap, tok)
			}
			pos = tok.End
		}
		code := ctoken.Code(toks)
		for _, tok := range code {
			if tok.Kind == ctoken.Comment || tok.Kind == ctoken.Preproc {
				t.Errorf("%s: Code kept %v", name, tok)
			}
		}
	}
}
