package kernel

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// maxVmlinux bounds the size of a decompressed kernel.
const maxVmlinux = 1 << 30

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// ExtractVmlinux writes the uncompressed ELF kernel inside bzImage to out.
//
// The payload is found through the setup header's payload_offset (boot
// protocol 2.08 and later), else at the first zstd frame magic in the file.
// zstd and gzip payloads are supported; bytes after the first compressed
// frame (the kernel appends the uncompressed size) are ignored. out is
// written to a temporary file in its directory and renamed into place, so it
// is either complete or absent.
func ExtractVmlinux(bzImage, out string) error {
	data, err := os.ReadFile(bzImage)
	if err != nil {
		return fmt.Errorf("extract vmlinux: %w", err)
	}
	vmlinux, err := decompressPayload(data)
	if err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", bzImage, err)
	}
	if err := fsutil.WriteFileAtomic(out, vmlinux, 0o644); err != nil {
		return fmt.Errorf("extract vmlinux from %s: %w", bzImage, err)
	}
	return nil
}

// decompressPayload returns the ELF kernel in a bzImage's contents.
func decompressPayload(data []byte) ([]byte, error) {
	if !isBzImage(data) {
		return nil, fmt.Errorf("%w (no HdrS setup header)", ErrNotKernel)
	}
	payload := headerPayload(data)
	if payload == nil {
		i := bytes.Index(data, zstdMagic)
		if i < 0 {
			return nil, errors.New("no zstd-compressed payload found")
		}
		payload = data[i:]
	}

	var vmlinux []byte
	var err error
	switch {
	case bytes.HasPrefix(payload, zstdMagic):
		vmlinux, err = decodeZstd(payload)
	case bytes.HasPrefix(payload, gzipMagic):
		vmlinux, err = decodeGzip(payload)
	default:
		return nil, fmt.Errorf("payload compression %s not supported (only zstd and gzip)", compressionName(payload))
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(vmlinux, []byte(elf.ELFMAG)) {
		return nil, fmt.Errorf("decompressed payload is not an ELF file (first bytes % x)", vmlinux[:min(len(vmlinux), 8)])
	}
	return vmlinux, nil
}

// headerPayload returns the compressed payload the setup header points to,
// or nil if the header does not say or points out of the file.
func headerPayload(data []byte) []byte {
	le := binary.LittleEndian
	if len(data) < 0x250 || le.Uint16(data[0x206:]) < 0x0208 {
		return nil
	}
	setupSects := int(data[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(le.Uint32(data[0x248:]))
	end := start + int(le.Uint32(data[0x24c:]))
	if start >= end || end > len(data) {
		return nil
	}
	p := data[start:end]
	if !bytes.HasPrefix(p, zstdMagic) && !bytes.HasPrefix(p, gzipMagic) && compressionName(p) == "unknown" {
		return nil
	}
	return p
}

// decodeZstd decodes the first zstd frame of payload.
func decodeZstd(payload []byte) ([]byte, error) {
	var h zstd.Header
	if err := h.Decode(payload); err != nil {
		return nil, fmt.Errorf("zstd payload: %w", err)
	}
	if h.HasFCS && h.FrameContentSize > maxVmlinux {
		return nil, fmt.Errorf("zstd payload: decompresses to %d bytes, more than a kernel", h.FrameContentSize)
	}
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxVmlinux))
	if err != nil {
		return nil, fmt.Errorf("zstd payload: %w", err)
	}
	defer d.Close()
	out, err := d.DecodeAll(payload, nil)
	if err != nil {
		// DecodeAll goes on to the next frame. Bytes after the first one
		// that are no frame fail with ErrMagicMismatch; the first frame
		// is whole if nothing went wrong before, or if its declared size
		// came out.
		firstWhole := len(out) > 0 && (errors.Is(err, zstd.ErrMagicMismatch) ||
			h.HasFCS && uint64(len(out)) >= h.FrameContentSize)
		if !firstWhole {
			return nil, fmt.Errorf("zstd payload: %w", err)
		}
	}
	if h.HasFCS && uint64(len(out)) > h.FrameContentSize {
		out = out[:h.FrameContentSize]
	}
	return out, nil
}

// decodeGzip decodes the first gzip member of payload.
func decodeGzip(payload []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("gzip payload: %w", err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, maxVmlinux+1))
	if err != nil {
		return nil, fmt.Errorf("gzip payload: %w", err)
	}
	if len(out) > maxVmlinux {
		return nil, errors.New("gzip payload: decompresses to more than a kernel")
	}
	return out, nil
}

// compressionName names the compression of a kernel payload by its magic.
func compressionName(p []byte) string {
	for _, m := range []struct {
		name  string
		magic string
	}{
		{"zstd", string(zstdMagic)},
		{"gzip", string(gzipMagic)},
		{"xz", "\xfd7zXZ\x00"},
		{"lzma", "\x5d\x00\x00"},
		{"bzip2", "BZh"},
		{"lz4", "\x02\x21\x4c\x18"},
		{"lzo", "\x89LZO"},
	} {
		if bytes.HasPrefix(p, []byte(m.magic)) {
			return m.name
		}
	}
	return "unknown"
}
