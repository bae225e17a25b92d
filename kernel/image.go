package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotKernel is wrapped by errors about a path that does not hold a kernel
// scxcheck can boot: missing, not a bzImage or x86-64 ELF vmlinux, or an ELF
// QEMU cannot boot directly.
var ErrNotKernel = errors.New("not a bzImage or ELF vmlinux")

// Image is a kernel the VM can boot.
type Image struct {
	// Boot is the file given to QEMU -kernel: the uncompressed ELF vmlinux
	// when available (PVH boot is faster), else the bzImage.
	Boot    string
	BzImage string // "" if unknown
	Vmlinux string // "" if unknown
	Config  string // path of the kernel .config, "" if unknown
	Release string // e.g. "7.2.13+deb14-cloud-amd64", "" if unknown
}

// Open describes the kernel at path: a bzImage, an x86-64 ELF vmlinux, or a
// directory holding one (a kernel build tree, or a directory with vmlinuz and
// vmlinux side by side).
//
// Beside a bzImage it looks for the matching vmlinux (same directory, or the
// top of a build tree for arch/x86/boot/bzImage), and beside a vmlinux for
// the matching bzImage. It looks for the config as config, .config or
// config-<release> in the image's directory and in the build tree's top.
// Paths in the Image are absolute.
func Open(path string) (*Image, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &wrapError{fmt.Sprintf("open kernel %q: no such file", path), []error{ErrNotKernel, fs.ErrNotExist}}
	}
	if err != nil {
		return nil, fmt.Errorf("open kernel %q: %w", path, unwrapPath(err))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open kernel %q: %w", path, err)
	}
	if fi.IsDir() {
		return openDir(path, abs)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open kernel %q: %w (not a regular file)", path, ErrNotKernel)
	}

	f, err := identify(abs)
	if err != nil {
		return nil, fmt.Errorf("open kernel %q: %w", path, err)
	}
	img := &Image{Release: f.release}
	var bz, vm *file
	switch f.kind {
	case kindBzImage:
		bz = f
		img.BzImage = abs
		vm = findSibling(vmlinuxCandidates(abs), kindVmlinux, f.release)
		if vm != nil {
			img.Vmlinux = vm.path
		}
	case kindVmlinux:
		vm = f
		img.Vmlinux = abs
		bz = findSibling(bzImageCandidates(abs), kindBzImage, f.release)
		if bz != nil {
			img.BzImage = bz.path
			if img.Release == "" {
				img.Release = bz.release
			}
		}
	}
	switch {
	case vm != nil && vm.pvh:
		img.Boot = img.Vmlinux
	case bz != nil:
		img.Boot = img.BzImage
	default:
		msg := fmt.Sprintf("open kernel %q: ELF vmlinux without a PVH entry note (CONFIG_PVH), which QEMU cannot boot; pass the bzImage instead", path)
		return nil, &wrapError{msg, []error{ErrNotKernel}}
	}
	img.Config = findConfig(abs, img.Release)
	return img, nil
}

// openDir opens a kernel build tree or a directory with the images in it.
func openDir(path, abs string) (*Image, error) {
	for _, name := range []string{"vmlinux", "arch/x86/boot/bzImage", "vmlinuz", "bzImage"} {
		p := filepath.Join(abs, filepath.FromSlash(name))
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return Open(p)
		}
	}
	return nil, fmt.Errorf("open kernel %q: %w (a directory without vmlinux, arch/x86/boot/bzImage, vmlinuz or bzImage)", path, ErrNotKernel)
}

type kind int

const (
	kindBzImage kind = iota + 1
	kindVmlinux
)

// file is what identify learnt about one kernel file.
type file struct {
	path    string
	kind    kind
	release string // "" if not found
	pvh     bool   // ELF with a PVH entry note
}

// identify reads the header of the file at path.
func identify(path string) (*file, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()

	head := make([]byte, 0x240)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	switch {
	case isBzImage(head):
		return &file{path: path, kind: kindBzImage, release: bzImageRelease(f, head)}, nil
	case bytes.HasPrefix(head, []byte(elf.ELFMAG)):
		return identifyELF(path, f)
	case n == 0:
		return nil, fmt.Errorf("%w (empty file)", ErrNotKernel)
	default:
		return nil, fmt.Errorf("%w (first bytes % x)", ErrNotKernel, head[:min(n, 8)])
	}
}

// isBzImage reports whether head starts an x86 boot image: the setup header
// magic "HdrS" at 0x202.
func isBzImage(head []byte) bool {
	return len(head) >= 0x206 && string(head[0x202:0x206]) == "HdrS"
}

// bzImageRelease reads the kernel version string the setup header points
// to: its offset, less 0x200, is at 0x20E. It returns the first word, the
// release, or "" if there is none.
func bzImageRelease(r io.ReaderAt, head []byte) string {
	if len(head) < 0x210 || binary.LittleEndian.Uint16(head[0x206:]) < 0x0200 {
		return ""
	}
	off := binary.LittleEndian.Uint16(head[0x20e:])
	if off == 0 {
		return ""
	}
	buf := make([]byte, 256)
	n, _ := r.ReadAt(buf, int64(off)+0x200)
	s := string(buf[:n])
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return releaseWord(s)
}

// releaseWord returns the first word of a version string, if it looks like
// a release (starts with a digit, printable).
func releaseWord(s string) string {
	s, _, _ = strings.Cut(s, " ")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return ""
	}
	for _, c := range s {
		if c <= ' ' || c > '~' {
			return ""
		}
	}
	return s
}

// identifyELF checks that f is an x86-64 ELF executable and reads its PVH
// note and version banner.
func identifyELF(path string, f *os.File) (*file, error) {
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil, fmt.Errorf("%w (bad ELF: %v)", ErrNotKernel, err)
	}
	if ef.Class != elf.ELFCLASS64 || ef.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%w (ELF for %v %v, not x86-64)", ErrNotKernel, ef.Class, ef.Machine)
	}
	if ef.Type != elf.ET_EXEC {
		return nil, fmt.Errorf("%w (ELF of type %v, a kernel is ET_EXEC)", ErrNotKernel, ef.Type)
	}
	release, err := elfRelease(f)
	if err != nil {
		return nil, err
	}
	return &file{path: path, kind: kindVmlinux, pvh: hasPVHNote(ef), release: release}, nil
}

// hasPVHNote reports whether an ELF note segment holds the Xen
// XEN_ELFNOTE_PHYS32_ENTRY note, without which QEMU refuses to boot an ELF
// kernel.
func hasPVHNote(ef *elf.File) bool {
	const xenElfnotePhys32Entry = 18
	for _, p := range ef.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(p.Open(), 1<<20))
		if err != nil {
			continue
		}
		for len(data) >= 12 {
			namesz := binary.LittleEndian.Uint32(data[0:])
			descsz := binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			data = data[12:]
			nameLen, descLen := align4(namesz), align4(descsz)
			if uint64(len(data)) < nameLen+descLen {
				break
			}
			name := string(bytes.TrimRight(data[:namesz], "\x00"))
			if name == "Xen" && typ == xenElfnotePhys32Entry {
				return true
			}
			data = data[nameLen+descLen:]
		}
	}
	return false
}

func align4(n uint32) uint64 { return (uint64(n) + 3) &^ 3 }

// elfRelease finds the "Linux version <release> " banner in a vmlinux. It
// reads the whole file (tens of megabytes for a real kernel) in chunks.
func elfRelease(f *os.File) (string, error) {
	const marker = "Linux version "
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	var carry []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(f, buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		chunk := append(carry, buf[:n]...)
		for off := 0; ; {
			i := bytes.Index(chunk[off:], []byte(marker))
			if i < 0 {
				break
			}
			start := off + i + len(marker)
			end := bytes.IndexAny(chunk[start:], " \x00\n")
			if end < 0 {
				if err == nil {
					break // the word continues in the next chunk
				}
				end = len(chunk) - start
			}
			if rel := releaseWord(string(chunk[start : start+end])); rel != "" {
				return rel, nil
			}
			off = start
		}
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		// Keep enough of the tail for a banner split across chunks.
		keep := min(len(chunk), 256)
		carry = append(carry[:0:0], chunk[len(chunk)-keep:]...)
	}
}

// vmlinuxCandidates are where the vmlinux of the bzImage at path may be.
func vmlinuxCandidates(path string) []string {
	dir := filepath.Dir(path)
	c := []string{filepath.Join(dir, "vmlinux")}
	if top, ok := buildTreeTop(path); ok {
		c = append(c, filepath.Join(top, "vmlinux"))
	}
	return c
}

// bzImageCandidates are where the bzImage of the vmlinux at path may be.
func bzImageCandidates(path string) []string {
	dir := filepath.Dir(path)
	return []string{
		filepath.Join(dir, "arch", "x86", "boot", "bzImage"),
		filepath.Join(dir, "vmlinuz"),
		filepath.Join(dir, "bzImage"),
	}
}

// buildTreeTop returns the top of the kernel build tree when path is its
// arch/x86/boot/bzImage.
func buildTreeTop(path string) (string, bool) {
	dir := filepath.ToSlash(filepath.Dir(path))
	for _, suffix := range []string{"/arch/x86/boot", "/arch/x86_64/boot"} {
		if top, ok := strings.CutSuffix(dir, suffix); ok && top != "" {
			return filepath.FromSlash(top), true
		}
	}
	return "", false
}

// findSibling returns the first candidate that is a kernel file of the
// wanted kind and, when both releases are known, the same release.
func findSibling(candidates []string, want kind, release string) *file {
	for _, p := range candidates {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		f, err := identify(p)
		if err != nil || f.kind != want {
			continue
		}
		if release != "" && f.release != "" && release != f.release {
			continue
		}
		return f
	}
	return nil
}

// findConfig looks for the kernel config beside the image at path, and at
// the top of a build tree.
func findConfig(path, release string) string {
	dirs := []string{filepath.Dir(path)}
	if top, ok := buildTreeTop(path); ok {
		dirs = append(dirs, top)
	}
	names := []string{"config", ".config"}
	if release != "" {
		names = append(names, "config-"+release)
	}
	for _, dir := range dirs {
		for _, name := range names {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p
			}
		}
	}
	return ""
}

// unwrapPath drops the *fs.PathError layer whose path the caller's message
// already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// wrapError has a message of its own and matches the errors it wraps.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }
