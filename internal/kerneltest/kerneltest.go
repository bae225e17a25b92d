// Package kerneltest builds tiny stand-ins for kernel images, for tests.
//
// The files it makes have just enough structure for package kernel to
// recognise them: an x86-64 ELF "vmlinux" with a PVH note and a version
// banner, and a bzImage-like file with a boot sector header ("HdrS"), a
// kernel version string and a compressed payload holding that ELF. They are
// a few hundred bytes long and boot nothing. WriteTree writes a synthetic
// kernel source tree.
package kerneltest

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/binary"
	"io/fs"
	"os"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ELF returns a minimal x86-64 ELF executable. With pvh it carries the Xen
// PVH entry note QEMU needs to boot an ELF kernel; with a release it holds a
// "Linux version <release> ..." banner as the kernel's .rodata does.
func ELF(release string, pvh bool) []byte {
	const (
		ehdrSize = 64
		phdrSize = 56
	)
	var note []byte
	if pvh {
		// namesz, descsz, type (XEN_ELFNOTE_PHYS32_ENTRY = 18), "Xen\0", entry
		note = binary.LittleEndian.AppendUint32(note, 4)
		note = binary.LittleEndian.AppendUint32(note, 8)
		note = binary.LittleEndian.AppendUint32(note, 18)
		note = append(note, "Xen\x00"...)
		note = binary.LittleEndian.AppendUint64(note, 0x1000000)
	}
	nphdr := 0
	if pvh {
		nphdr = 1
	}
	noteOff := ehdrSize + nphdr*phdrSize

	b := make([]byte, ehdrSize)
	copy(b, "\x7fELF")
	b[4] = 2 // ELFCLASS64
	b[5] = 1 // little endian
	b[6] = 1 // EV_CURRENT
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)  // ET_EXEC
	le.PutUint16(b[18:], 62) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], 0x1000000) // entry
	if nphdr > 0 {
		le.PutUint64(b[32:], ehdrSize) // phoff
	}
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], uint16(nphdr))
	le.PutUint16(b[58:], 64) // shentsize
	if pvh {
		ph := make([]byte, phdrSize)
		le.PutUint32(ph[0:], 4) // PT_NOTE
		le.PutUint64(ph[8:], uint64(noteOff))
		le.PutUint64(ph[32:], uint64(len(note)))
		le.PutUint64(ph[40:], uint64(len(note)))
		le.PutUint64(ph[48:], 4)
		b = append(b, ph...)
	}
	b = append(b, note...)
	if release != "" {
		b = append(b, "\x00Linux version "+release+" (test@scxcheck) #1 SMP PREEMPT_DYNAMIC\n\x00"...)
	}
	return b
}

// Compression of a BzImage payload.
type Compression int

const (
	Zstd Compression = iota
	Gzip
	XZ // only the magic: for testing that it is refused
)

// BzImageOptions describes a synthetic bzImage.
type BzImageOptions struct {
	Release     string      // kernel version string in the header; "" = none
	Payload     []byte      // what the compressed payload decompresses to
	Compression Compression // how the payload is compressed
	OldHeader   bool        // boot protocol 2.00: no payload_offset/length fields
	Trailer     []byte      // bytes after the payload (the kernel appends its size)
}

// BzImage returns a bzImage-like file: one setup sector with the "HdrS"
// header, then the compressed payload, then opts.Trailer.
func BzImage(opts BzImageOptions) []byte {
	const setupSects = 1
	b := make([]byte, (setupSects+1)*512)
	le := binary.LittleEndian
	b[0x1f1] = setupSects
	le.PutUint16(b[0x1fe:], 0xaa55)
	copy(b[0x202:], "HdrS")
	version := uint16(0x020f)
	if opts.OldHeader {
		version = 0x0200
	}
	le.PutUint16(b[0x206:], version)
	if opts.Release != "" {
		const at = 0x300 // the kernel_version field is relative to 0x200
		le.PutUint16(b[0x20e:], at-0x200)
		copy(b[at:], opts.Release+" (test@scxcheck) #1 SMP\x00")
	}

	var payload []byte
	switch opts.Compression {
	case Zstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			panic(err)
		}
		payload = enc.EncodeAll(opts.Payload, nil)
		enc.Close()
	case Gzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(opts.Payload)
		w.Close()
		payload = buf.Bytes()
	case XZ:
		payload = append([]byte("\xfd7zXZ\x00"), opts.Payload...)
	}
	// The kernel appends the uncompressed size to the compressed data.
	payload = le.AppendUint32(payload, uint32(len(opts.Payload)))
	if !opts.OldHeader {
		le.PutUint32(b[0x248:], 0) // payload_offset, from the protected-mode code
		le.PutUint32(b[0x24c:], uint32(len(payload)))
	}
	b = append(b, payload...)
	return append(b, opts.Trailer...)
}

//go:embed faketree
var fakeTree embed.FS

// WriteTree writes a synthetic kernel tree into dir (t.TempDir() when
// ""), for kernel/build's fake make and kernel/kconfig's Kconfig reader: a
// Makefile that starts as a kernel's does (7.2.0-fake) and Kconfig files
// small enough to reason about. It returns dir.
func WriteTree(t testing.TB, dir string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	tree, err := fs.Sub(fakeTree, "faketree")
	if err == nil {
		err = os.CopyFS(dir, tree)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
