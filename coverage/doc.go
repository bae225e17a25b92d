// Package coverage measures how much of a patch a test suite executes:
// which of the lines a patch adds to a kernel tree ran, and which specs ran
// them.
//
// A patch's changed lines come from patch files (FromPatches), from a
// commit range of a git tree (FromGit) or, for a patch the tree already
// contains, from finding its added lines in the tree by their content
// (Locate). Package gcov turns the kernel's gcov data into line counts per
// spec; NewReport intersects the two (only the lines gcov instruments are
// executable) and writes what a reviewer reads: summary.txt,
// changed-lines.json and an annotated page per changed file.
//
// Paths are relative to the tree ("kernel/sched/ext/ext.c") throughout: the
// changes name files so, and gcov's absolute paths are made so with
// gcov.Coverage.Relative (or gcov.Merged.Relative) and the root of the tree
// the kernel was built from.
package coverage
