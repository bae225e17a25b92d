package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestFocusRegexp: a mutant's runs select exactly the specs that executed
// its line, as Ginkgo matches a focus (the suite's description, a space,
// the spec's text), whatever regexp characters the texts hold.
func TestFocusRegexp(t *testing.T) {
	specs := []string{
		"distant: when the root dispatches its grandchild exits the caller with SCX_EXIT_ERROR",
		"dispatch: when the parent's child table is full rejects one child more with parent rejected (-28) and keeps the others",
	}
	re := regexp.MustCompile(focusRegexp(specs))
	for _, s := range specs {
		if !re.MatchString("scxcheck " + s) {
			t.Errorf("%q does not match %q", re, s)
		}
	}
	for _, s := range []string{
		"scxcheck distant: when the root dispatches its grandchild exits the caller with SCX_EXIT_ERROR and takes its descendants down",
		"scxcheck dispatch: when the parent's child table is full rejects one child more with parent rejected -28 and keeps the others",
		"scxcheck boot: boots",
	} {
		if re.MatchString(s) {
			t.Errorf("%q matches %q", re, s)
		}
	}
}

func TestCompilerError(t *testing.T) {
	msg := "kernel build failed (make: exit status 2) after 40s; last errors:\n  kernel/sched/ext/ext.c:9448:9: error: expected ';' before '}' token\n  make[4]: *** [build_policy.o] Error 1\nfull log: x"
	if got, want := compilerError(msg), "kernel/sched/ext/ext.c:9448:9: error: expected ';' before '}' token"; got != want {
		t.Errorf("compilerError = %q, want %q", got, want)
	}
	if got := compilerError("make olddefconfig failed\nmore"); got != "make olddefconfig failed" {
		t.Errorf("compilerError = %q", got)
	}
}

// TestMutateStateClaim: a state directory resumes a mutate of the same
// inputs and refuses one of other inputs (exit 2).
func TestMutateStateClaim(t *testing.T) {
	dir := t.TempDir() + "/state"
	in := mutateInputs{Kernel: "7.2.13-abc", Changed: []string{"/seed.patch"}, LabelFilter: "distant"}
	if err := in.claim(dir); err != nil {
		t.Fatal(err)
	}
	if err := in.claim(dir); err != nil {
		t.Errorf("the same inputs again: %v", err)
	}
	other := in
	other.LabelFilter = "dispatch"
	err := other.claim(dir)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), "holds a mutate run of other inputs") {
		t.Errorf("other inputs: %v", err)
	}
	if in.key() == other.key() {
		t.Error("other inputs, same default state directory")
	}
}
