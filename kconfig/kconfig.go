// Package kconfig holds scxcheck's kernel config fragments, embedded in the
// binary so that `scxcheck kernel build` works from anywhere:
//
//   - sub-sched.config: what sched_ext cgroup sub-schedulers, the fixtures
//     and the suites need;
//   - vm.config: what scxcheck's QEMU VM and its guest agent need of any
//     kernel it boots.
//
// They are merged, in that order, onto a small base config (tinyconfig by
// default), and every symbol they set is checked after olddefconfig.
package kconfig

import "embed"

//go:embed sub-sched.config vm.config
var files embed.FS

// Names are the fragments in the order they are merged.
var Names = []string{"sub-sched.config", "vm.config"}

// File is one fragment.
type File struct {
	Name string // e.g. "kconfig/vm.config"
	Data []byte
}

// Files returns the fragments in merge order.
func Files() []File {
	var out []File
	for _, n := range Names {
		data, err := files.ReadFile(n)
		if err != nil {
			panic(err) // embedded: cannot fail
		}
		out = append(out, File{Name: "kconfig/" + n, Data: data})
	}
	return out
}
