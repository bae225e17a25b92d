// Package initramfs writes the initial RAM filesystem a test VM boots from.
//
// The archive is an uncompressed cpio in the "newc" format, which every Linux
// kernel unpacks without a decompressor. It holds the guest agent as /init and
// any extra files the agent needs.
package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// File is one regular file in the archive.
type File struct {
	// Name is the path inside the guest, e.g. "/init".
	Name string
	// Mode holds the permission bits, e.g. 0o755.
	Mode os.FileMode
	// Source is a host path whose contents are copied, used when Data is nil.
	Source string
	// Data is the file's contents.
	Data []byte
}

// Archive collects files and writes them as a cpio newc stream.
type Archive struct {
	files []File
	dirs  map[string]bool
}

// Add queues a file for the archive; its parent directories are created
// implicitly.
func (a *Archive) Add(f File) {
	if a.dirs == nil {
		a.dirs = make(map[string]bool)
	}
	name := strings.TrimPrefix(path.Clean("/"+f.Name), "/")
	f.Name = name
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		a.dirs[d] = true
	}
	a.files = append(a.files, f)
}

// WriteFile writes the archive to a new file at dst.
func (a *Archive) WriteFile(dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create initramfs: %w", err)
	}
	if err := a.Write(out); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write initramfs %s: %w", dst, err)
	}
	return nil
}

// Write writes the archive to w.
func (a *Archive) Write(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &cpioWriter{w: bw, ino: 1}

	dirs := make([]string, 0, len(a.dirs))
	for d := range a.dirs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents sort before their children
	for _, d := range dirs {
		if err := cw.entry(d, 0o040755, nil); err != nil {
			return err
		}
	}
	for _, f := range a.files {
		data := f.Data
		if data == nil {
			var err error
			data, err = os.ReadFile(f.Source)
			if err != nil {
				return fmt.Errorf("add %s to initramfs: %w", f.Name, err)
			}
		}
		if err := cw.entry(f.Name, 0o100000|uint32(f.Mode.Perm()), data); err != nil {
			return err
		}
	}
	if err := cw.entry("TRAILER!!!", 0, nil); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
	off int64
}

func (c *cpioWriter) entry(name string, mode uint32, data []byte) error {
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.ino++
	if err := c.write([]byte(hdr)); err != nil {
		return err
	}
	if err := c.write(append([]byte(name), 0)); err != nil {
		return err
	}
	if err := c.pad(); err != nil {
		return err
	}
	if err := c.write(data); err != nil {
		return err
	}
	return c.pad()
}

func (c *cpioWriter) write(b []byte) error {
	n, err := c.w.Write(b)
	c.off += int64(n)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}

func (c *cpioWriter) pad() error {
	if rem := c.off % 4; rem != 0 {
		return c.write(make([]byte, 4-rem))
	}
	return nil
}
