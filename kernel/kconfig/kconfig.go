// Package kconfig is how scxcheck configures the kernels it builds: config
// fragments parsed and merged onto a base config as the kernel's
// scripts/kconfig/merge_config.sh does (Merge), scxcheck's own fragments
// (Default), and the check after `make olddefconfig` that every symbol a
// fragment set survived (Verify). A symbol that did not is explained from
// the tree's Kconfig files (ReadRules): the dependency that is off, the
// fragment line that turned it off, or why no fragment can set it.
//
// scxcheck's fragments are in fragments/, embedded in the binary so that
// `scxcheck kernel build` works from anywhere, grouped by purpose with every
// option commented with why it is there:
//
//   - sub-sched.config: what sched_ext cgroup sub-schedulers, the fixtures
//     and the suites need;
//   - vm.config: what scxcheck's QEMU VM and its guest agent need of any
//     kernel it boots;
//   - coverage.config: gcov profiling, for `kernel build --coverage`
//     (Coverage), merged after the other two.
package kconfig

import (
	"embed"
	"fmt"
	"path"
	"strings"

	"github.com/scxcheck/scxcheck/kernel"
)

//go:embed fragments/*.config
var fragments embed.FS

// fragmentDir is where the fragments are in scxcheck's repository, for
// their names in messages.
const fragmentDir = "kernel/kconfig/fragments"

// Default returns scxcheck's own fragments in the order they are merged,
// before any of the user's.
func Default() []Fragment {
	return []Fragment{embedded("sub-sched.config"), embedded("vm.config")}
}

// Coverage returns the fragment of a coverage kernel (gcov profiling of
// the objects the build asks for), merged after Default's.
func Coverage() Fragment { return embedded("coverage.config") }

// embedded returns one of scxcheck's fragments.
func embedded(name string) Fragment {
	data, err := fragments.ReadFile(path.Join("fragments", name))
	if err != nil {
		panic(err) // embedded: cannot fail
	}
	return Fragment{Name: path.Join(fragmentDir, name), Data: data}
}

// Verify checks the config olddefconfig wrote at cfgPath, in a build of the
// tree at src, against the requests of the merged fragments. When some did
// not survive it explains each from the tree's Kconfig and returns a
// *DroppedError; what names the base and the tree for its message. A
// Kconfig it cannot read is said to logf (nil: not said) and leaves the
// symbols unexplained.
func Verify(src, cfgPath string, requests []Assignment, what string, logf func(string, ...any)) error {
	final, err := kernel.ReadConfig(cfgPath)
	if err != nil {
		return err
	}
	var k *Rules
	check := func() []Dropped { return checkRequests(k, requests, final) }
	dropped := check()
	if len(dropped) == 0 {
		return nil
	}
	if k, err = ReadRules(src); err != nil {
		if logf != nil {
			logf("cannot read the tree's Kconfig to explain the dropped symbols: %v", err)
		}
		k = nil
	}
	dropped = check()
	var b strings.Builder
	fmt.Fprintf(&b, "kernel config: %d requested symbol(s) did not survive olddefconfig (%s); not building a kernel without them:",
		len(dropped), what)
	for _, d := range dropped {
		b.WriteString("\n  " + d.String())
	}
	fmt.Fprintf(&b, "\nthe config is in %s", cfgPath)
	return &DroppedError{Dropped: dropped, msg: b.String()}
}

// DroppedError is the error of Verify: the config lost requested symbols.
// It wraps kernel.ErrConfig.
type DroppedError struct {
	Dropped []Dropped
	msg     string
}

func (e *DroppedError) Error() string { return e.msg }
func (e *DroppedError) Unwrap() error { return kernel.ErrConfig }
