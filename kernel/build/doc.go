// Package build builds a Linux kernel for scxcheck to test: from a source
// tree the user gives, or Debian's linux-source of a series (downloaded with
// kernel/debian's private apt configuration into $CACHE/build/trees/), with
// the user's patches and scxcheck's test-only one (TestPatches) applied, and
// configured by kernel/kconfig: a base config, scxcheck's fragments and the
// user's merged onto it, every requested symbol checked after olddefconfig.
//
// The result is an entry of the kernel cache, $CACHE/build/kernels/
// <version>-<key>/ (a kernel/cache entry: vmlinux stripped of DWARF, bzImage,
// config, System.map, build.log). Its key (KeyInputs.Key) is the SHA-256 of
// everything the kernel depends on: the tree (its git commit, plus the diff
// and untracked files when dirty, or the content of every file outside
// git), the patches, the base, the fragments, gcc, ld and pahole. An
// unchanged build returns the entry without running make.
//
// Each tree has a work directory, $CACHE/build/work/<hash of its path>/,
// locked while a build runs in it: src/ is a copy of the tree (never the
// tree itself: patches are applied there; later builds copy only what
// changed), obj/ the kernel's O= build directory, so that later builds of
// the same tree, with or without patches, are incremental (a coverage kernel,
// Options.Coverage, has a work directory of its own, <hash>-coverage/).
// Prune removes
// old entries and the work directories of trees that are gone.
//
// Errors wrap ErrNotTree, ErrPatch, ErrFragment (bad input), ErrToolchain,
// ErrBuild, kernel.ErrConfig (a requested symbol did not survive) or
// debian.ErrMirror.
package build
