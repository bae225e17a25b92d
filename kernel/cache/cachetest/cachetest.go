// Package cachetest is the damage a cache entry can suffer, for the tests
// of kernel/cache and of the caches built on it: each Fault breaks an entry
// as a process killed mid-write, a full disk or a bad disk would, and says
// what cache.Store.Open reports about it.
package cachetest

import (
	"fmt"
	"os"
	"path/filepath"
)

// Fault is one kind of damage.
type Fault struct {
	Name string
	// Apply damages the entry in dir.
	Apply func(dir string) error
	// Detail is part of what cache.Error.Detail says about the damage.
	Detail string
}

// Faults returns the faults of an entry whose manifest file is named
// manifest and that holds file, a listed file of two bytes or more.
func Faults(manifest, file string) []Fault {
	return []Fault{
		{"truncated " + file, func(dir string) error {
			p := filepath.Join(dir, file)
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/2)
		}, file + " has "},
		{"one byte of " + file + " changed", func(dir string) error {
			return FlipByte(filepath.Join(dir, file))
		}, file + " does not match its SHA-256 in " + manifest},
		{"no manifest (a fetch that died before finishing)", func(dir string) error {
			return os.Remove(filepath.Join(dir, manifest))
		}, "no " + manifest},
		{file + " missing", func(dir string) error {
			return os.Remove(filepath.Join(dir, file))
		}, "no such file or directory"},
		{"manifest cut short", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, manifest), []byte(`{"release": "7.2`), 0o644)
		}, manifest + ": unexpected end of JSON input"},
	}
}

// FlipByte inverts the byte in the middle of the file at path.
func FlipByte(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return fmt.Errorf("flip a byte of %s: the file is empty", path)
	}
	data[len(data)/2] ^= 0xff
	return os.WriteFile(path, data, 0o644)
}
