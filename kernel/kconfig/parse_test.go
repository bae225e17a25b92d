package kconfig

import (
	"slices"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
)

func fakeKconfig(t *testing.T) *Rules {
	t.Helper()
	k, err := ReadRules(kerneltest.WriteTree(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKconfigFollowsSourcesAndBlocks(t *testing.T) {
	k := fakeKconfig(t)
	for sym, want := range map[string][]string{
		"FOO":    {"BAR && X86"},
		"BAR":    {"BAZ"},
		"SUB":    {"FOO"},                        // from a sourced file
		"INMENU": {"QUX"},                        // the menu's depends on
		"INIF":   {"QUX"},                        // the if block
		"JIT":    {"HAVE_JIT || HAVE_OTHER_JIT"}, // a continued line
	} {
		defs := k.defs[sym]
		if len(defs) != 1 {
			t.Fatalf("%s: %d definitions, want 1", sym, len(defs))
		}
		if !slices.Equal(defs[0].deps, want) {
			t.Errorf("%s: deps %q, want %q", sym, defs[0].deps, want)
		}
	}
	if len(k.defs["FOO"]) != 1 || k.defs["FOO"][0].file != "init/Kconfig" {
		t.Errorf("FOO defined at %+v; the one in BAZ's help text must not count", k.defs["FOO"])
	}
	if k.defs["HIDDEN"][0].prompt || !k.defs["BAR"][0].prompt || !k.defs["64BIT"][0].prompt {
		t.Error("prompts: HIDDEN has none, BAR and 64BIT have one")
	}
	if !k.defs["PICK_A"][0].choice || k.defs["QUX"][0].choice {
		t.Error("PICK_A is a choice option, QUX is not")
	}
	if got := k.selectors["HIDDEN"]; len(got) != 1 || got[0] != (selectBy{By: "SELECTOR", Cond: "X86"}) {
		t.Errorf("selectors of HIDDEN = %+v", got)
	}
	if !slices.Equal(k.missing, []string{"nosuch/Kconfig"}) {
		t.Errorf("missing optional sources = %q", k.missing)
	}
}

func TestEval(t *testing.T) {
	cfg := map[string]string{"CONFIG_A": "y", "CONFIG_M": "m", "CONFIG_V": "130", "CONFIG_S": `"x86"`}
	for expr, want := range map[string]int{
		"A":                 triY,
		"B":                 triN,
		"!B":                triY,
		"A && B":            triN,
		"A || B":            triY,
		"M":                 triM,
		"A && M":            triM,
		"!(A && B)":         triY,
		"V >= 126":          triY,
		"V < 126":           triN,
		"V = 130":           triY,
		`S = "x86"`:         triY,
		`S != "x86"`:        triN,
		"A = y":             triY,
		"B != n":            triN,
		"(A || B) && !B":    triY,
		"A && (B || (M))":   triM,
		"0x10 > 0x0f":       triY,
		`"$(ARCH)" = "x86"`: triN,
	} {
		if got := eval(expr, cfg); got != want {
			t.Errorf("eval(%q) = %d, want %d", expr, got, want)
		}
	}
}

func TestConjuncts(t *testing.T) {
	for expr, want := range map[string][]string{
		"A":                  {"A"},
		"A && B":             {"A", "B"},
		"A && (B || C)":      {"A", "(B || C)"},
		"(A && B) && C":      {"A", "B", "C"},
		"VER >= 126 && !X86": {"VER >= 126", "!X86"},
	} {
		if got := conjuncts(expr); !slices.Equal(got, want) {
			t.Errorf("conjuncts(%q) = %q, want %q", expr, got, want)
		}
	}
}

// explainOne runs the dropped-symbol check for requests against a final
// config and returns the one Dropped it must find.
func explainOne(t *testing.T, requests []Assignment, final map[string]string) Dropped {
	t.Helper()
	d := checkRequests(fakeKconfig(t), requests, final)
	if len(d) != 1 {
		t.Fatalf("dropped %v, want exactly one", d)
	}
	return d[0]
}

func req(sym, value string) Assignment {
	return Assignment{Sym: sym, Value: value, Where: "test.config:1"}
}

func TestDroppedNamesUnmetDependency(t *testing.T) {
	final := map[string]string{"CONFIG_X86": "y", "CONFIG_BAZ": "y"}
	d := explainOne(t, []Assignment{req("FOO", "y")}, final)
	if !slices.Equal(d.Unmet, []string{"BAR"}) {
		t.Errorf("unmet = %q, want [BAR]", d.Unmet)
	}
	for _, want := range []string{"CONFIG_FOO=y", "test.config:1", "not set", "depends on BAR", "init/Kconfig:13 says"} {
		if !strings.Contains(d.String(), want) {
			t.Errorf("%q lacks %q", d.String(), want)
		}
	}
}

func TestDroppedFollowsTheChain(t *testing.T) {
	// FOO needs BAR, which needs BAZ, which a fragment turned off.
	requests := []Assignment{req("FOO", "y"), req("BAR", "y"), {Sym: "BAZ", Value: "n", Where: "off.config:4"}}
	final := map[string]string{"CONFIG_X86": "y"}
	ds := checkRequests(fakeKconfig(t), requests, final)
	if len(ds) != 2 {
		t.Fatalf("dropped %v, want FOO and BAR", ds)
	}
	foo := ds[0].String()
	for _, want := range []string{"depends on BAR", "asks for but is not set either", "depends on BAZ", "off.config:4 turns off"} {
		if !strings.Contains(foo, want) {
			t.Errorf("%q lacks %q", foo, want)
		}
	}
}

func TestDroppedThroughMenuAndIf(t *testing.T) {
	for _, sym := range []string{"INMENU", "INIF"} {
		d := explainOne(t, []Assignment{req(sym, "y")}, map[string]string{"CONFIG_X86": "y"})
		if !slices.Equal(d.Unmet, []string{"QUX"}) {
			t.Errorf("%s: unmet %q, want [QUX]", sym, d.Unmet)
		}
	}
}

func TestDroppedComparison(t *testing.T) {
	d := explainOne(t, []Assignment{req("NEEDS_VER", "y")}, map[string]string{"CONFIG_X86": "y", "CONFIG_VER": "124", "CONFIG_BAZ": "y"})
	if !strings.Contains(d.Reason, "VER >= 126 (VER=124)") {
		t.Errorf("reason %q does not show the comparison and the value", d.Reason)
	}
}

func TestDroppedWithoutPrompt(t *testing.T) {
	d := explainOne(t, []Assignment{req("HIDDEN", "y")}, map[string]string{"CONFIG_X86": "y"})
	for _, want := range []string{"no prompt", "selected by SELECTOR if X86"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("reason %q lacks %q", d.Reason, want)
		}
	}
}

func TestDroppedUndefinedSymbol(t *testing.T) {
	d := explainOne(t, []Assignment{req("NO_SUCH_THING", "y")}, map[string]string{})
	if !strings.Contains(d.Reason, "not defined in this tree's Kconfig") {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestRequestedOffButSelected(t *testing.T) {
	d := explainOne(t, []Assignment{req("HIDDEN", "n")}, map[string]string{"CONFIG_X86": "y", "CONFIG_SELECTOR": "y", "CONFIG_HIDDEN": "y"})
	if !strings.Contains(d.Reason, "selected by SELECTOR") {
		t.Errorf("reason %q", d.Reason)
	}
}

func TestSatisfiedRequestsAreNotReported(t *testing.T) {
	final := map[string]string{"CONFIG_FOO": "y", "CONFIG_SUB": "y", "CONFIG_NUM": "0x4", "CONFIG_S": `"a b"`}
	requests := []Assignment{req("FOO", "y"), req("SUB", "m"), req("NUM", "0X4"), req("QUX", "n"), req("S", `"a b"`)}
	if d := checkRequests(fakeKconfig(t), requests, final); len(d) != 0 {
		t.Errorf("dropped %v, want none", d)
	}
}
