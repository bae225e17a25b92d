package kernel_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
	"github.com/scxcheck/scxcheck/kernel"
)

func TestExtractVmlinux(t *testing.T) {
	elf := kerneltest.ELF(release, true)
	garbage := bytes.Repeat([]byte("trailing garbage "), 20)
	for _, tc := range []struct {
		name string
		opts kerneltest.BzImageOptions
	}{
		{"zstd", kerneltest.BzImageOptions{Payload: elf}},
		{"zstd with trailing bytes", kerneltest.BzImageOptions{Payload: elf, Trailer: garbage}},
		{"zstd found by its magic", kerneltest.BzImageOptions{Payload: elf, OldHeader: true, Trailer: garbage}},
		{"gzip", kerneltest.BzImageOptions{Payload: elf, Compression: kerneltest.Gzip, Trailer: garbage}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bz := write(t, dir, "vmlinuz", kerneltest.BzImage(tc.opts))
			out := filepath.Join(dir, "vmlinux")
			if err := kernel.ExtractVmlinux(bz, out); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, elf) {
				t.Errorf("extracted %d bytes, want the %d-byte ELF", len(got), len(elf))
			}
			if img, err := kernel.Open(out); err != nil || img.Release != release {
				t.Errorf("Open(extracted) = %+v, %v", img, err)
			}
			assertNoTemp(t, dir, "vmlinux", "vmlinuz")
		})
	}
}

func TestExtractVmlinuxErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
		is   error
	}{
		{"xz", kerneltest.BzImage(kerneltest.BzImageOptions{Payload: []byte("x"), Compression: kerneltest.XZ}),
			"payload compression xz not supported", nil},
		{"not a bzImage", kerneltest.ELF(release, true), "no HdrS setup header", kernel.ErrNotKernel},
		{"payload not ELF", kerneltest.BzImage(kerneltest.BzImageOptions{Payload: []byte("#!/bin/sh\necho hi\n")}),
			"decompressed payload is not an ELF file", nil},
		{"truncated", kerneltest.BzImage(kerneltest.BzImageOptions{Payload: incompressibleELF(), OldHeader: true})[:0x800],
			"zstd payload: unexpected EOF", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			bz := write(t, dir, "vmlinuz", tc.data)
			out := filepath.Join(dir, "vmlinux")
			err := kernel.ExtractVmlinux(bz, out)
			if err == nil {
				t.Fatal("ExtractVmlinux succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), bz) {
				t.Errorf("error %q does not contain %q and the file name", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			assertNoTemp(t, dir, "vmlinuz")
		})
	}
}

// incompressibleELF returns 64 KiB that start like an ELF file and do not
// compress, so that cutting the compressed data cuts the frame.
func incompressibleELF() []byte {
	b := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{}).Read(b)
	return append(kerneltest.ELF("", true), b...)
}

// assertNoTemp checks that dir holds exactly the files named.
func assertNoTemp(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
