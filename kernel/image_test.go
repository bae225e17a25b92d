package kernel_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/internal/kerneltest"
	"github.com/scxcheck/scxcheck/kernel"
)

const release = "9.9.9+test-cloud-amd64"

// write creates dir/name (and its directory) with data and returns its path.
func write(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func bzImage(rel string) []byte {
	return kerneltest.BzImage(kerneltest.BzImageOptions{Release: rel, Payload: kerneltest.ELF(rel, true)})
}

func copyFile(t *testing.T, from, to string) string {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	return write(t, filepath.Dir(to), filepath.Base(to), data)
}

func TestOpenMissing(t *testing.T) {
	_, err := kernel.Open("testdata/no-such-kernel")
	if err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
	if want := `open kernel "testdata/no-such-kernel": no such file`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !errors.Is(err, kernel.ErrNotKernel) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap ErrNotKernel and fs.ErrNotExist", err)
	}
}

func TestOpenNotAKernel(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"text", "testdata/not-a-kernel.txt", `open kernel "testdata/not-a-kernel.txt": not a bzImage or ELF vmlinux (first bytes 54 68 69 73 20 69 73 20)`},
		{"empty", write(t, t.TempDir(), "empty", nil), "(empty file)"},
		{"directory", t.TempDir(), "a directory without vmlinux"},
		{"ELF without PVH note", write(t, t.TempDir(), "vmlinux", kerneltest.ELF(release, false)), "without a PVH entry note"},
		{"ELF for another machine", write(t, t.TempDir(), "vmlinux", otherMachine(kerneltest.ELF(release, true))), "not x86-64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := kernel.Open(tc.path)
			if err == nil {
				t.Fatalf("Open(%s) = %+v, want an error", tc.path, img)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if !errors.Is(err, kernel.ErrNotKernel) {
				t.Errorf("error %v does not wrap ErrNotKernel", err)
			}
		})
	}
}

// otherMachine turns an x86-64 ELF into an aarch64 one.
func otherMachine(b []byte) []byte {
	b[18] = 183 // EM_AARCH64
	return b
}

func TestOpenELF(t *testing.T) {
	p := write(t, t.TempDir(), "vmlinux", kerneltest.ELF(release, true))
	img, err := kernel.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	want := kernel.Image{Boot: p, Vmlinux: p, Release: release}
	if *img != want {
		t.Errorf("Open = %+v, want %+v", *img, want)
	}
}

func TestOpenBzImage(t *testing.T) {
	p := write(t, t.TempDir(), "bzImage", bzImage(release))
	img, err := kernel.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	want := kernel.Image{Boot: p, BzImage: p, Release: release}
	if *img != want {
		t.Errorf("Open = %+v, want %+v", *img, want)
	}
}

// A directory as the Debian fetcher leaves it: vmlinuz, vmlinux and config
// side by side. Either file, or the directory, opens the same Image.
func TestOpenSideBySide(t *testing.T) {
	dir := t.TempDir()
	bz := write(t, dir, "vmlinuz", bzImage(release))
	vm := write(t, dir, "vmlinux", kerneltest.ELF(release, true))
	cfg := copyFile(t, "testdata/config-sub-sched", filepath.Join(dir, "config"))
	want := kernel.Image{Boot: vm, BzImage: bz, Vmlinux: vm, Config: cfg, Release: release}
	for _, p := range []string{bz, vm, dir} {
		img, err := kernel.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if *img != want {
			t.Errorf("Open(%s) = %+v, want %+v", p, *img, want)
		}
	}
}

// A /boot-like directory: config-<release>, and a vmlinux of another
// release that must not be taken for this bzImage's.
func TestOpenBootDir(t *testing.T) {
	dir := t.TempDir()
	bz := write(t, dir, "vmlinuz", bzImage(release))
	write(t, dir, "vmlinux", kerneltest.ELF("1.2.3-other", true))
	cfg := copyFile(t, "testdata/config-sub-sched", filepath.Join(dir, "config-"+release))
	img, err := kernel.Open(bz)
	if err != nil {
		t.Fatal(err)
	}
	want := kernel.Image{Boot: bz, BzImage: bz, Config: cfg, Release: release}
	if *img != want {
		t.Errorf("Open = %+v, want %+v", *img, want)
	}
}

func TestOpenBuildTree(t *testing.T) {
	top := t.TempDir()
	bz := write(t, top, "arch/x86/boot/bzImage", bzImage("9.9.9"))
	vm := write(t, top, "vmlinux", kerneltest.ELF("9.9.9", true))
	cfg := copyFile(t, "testdata/config-sub-sched", filepath.Join(top, ".config"))
	want := kernel.Image{Boot: vm, BzImage: bz, Vmlinux: vm, Config: cfg, Release: "9.9.9"}
	for _, p := range []string{top, bz, vm} {
		img, err := kernel.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if *img != want {
			t.Errorf("Open(%s) = %+v, want %+v", p, *img, want)
		}
	}
}

// A vmlinux QEMU cannot boot (no PVH note) is still described, but the
// bzImage beside it is what boots.
func TestOpenELFWithoutPVH(t *testing.T) {
	top := t.TempDir()
	bz := write(t, top, "arch/x86/boot/bzImage", bzImage("9.9.9"))
	vm := write(t, top, "vmlinux", kerneltest.ELF("9.9.9", false))
	img, err := kernel.Open(vm)
	if err != nil {
		t.Fatal(err)
	}
	want := kernel.Image{Boot: bz, BzImage: bz, Vmlinux: vm, Release: "9.9.9"}
	if *img != want {
		t.Errorf("Open = %+v, want %+v", *img, want)
	}
}
