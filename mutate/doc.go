// Package mutate is mutation testing of a kernel patch's changed lines:
// it changes one line the way real bugs change code, builds the kernel,
// runs the specs that executed that line, and sees whether one of them
// notices.
//
// Generate makes the mutants of a C file's lines, with the operators a
// programmer's slips suggest (Operators): each a small edit on the tokens
// of package ctoken, never inside a comment, a string or a macro
// definition, given as a unified diff that `patch -p1` applies. Select
// keeps the mutants of the changed lines some spec executed (per-spec
// coverage, package coverage) and gives each the specs that executed its
// line. Run builds and tests them behind the Builder and Tester
// interfaces, with a state directory that makes an interrupted run
// resumable, and classifies each: killed, survived, unknown (only the
// infrastructure failed) or stillborn (it did not compile). Report is the
// outcome: the mutation score, every survivor with its diff and the specs
// that ran on it, every kill with the spec and failure class that caught
// it, as text, JSON, and HTML pages (WritePages): per changed file, the
// annotated view of a coverage report with each line's mutants, their
// outcomes and diffs.
package mutate
