package bisect

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// Digest identifies what a kernel image runs, so that two builds of the
// same code compare equal even though the kernel stamps every build: for an
// ELF vmlinux it hashes the loaded sections except notes (the build id is a
// hash of the rest), with the version banner's build stamp ("#<n> SMP
// PREEMPT_DYNAMIC <date>") blanked wherever it occurs; for anything else,
// the whole file. Builds that differ only in the stamp's length still
// differ (the layout shifts): a false "different", never a false "same".
func Digest(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return fileDigest(path)
	}
	defer f.Close()
	var stamps [][]byte
	h := sha256.New()
	var sections [][]byte
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Type == elf.SHT_NOBITS || s.Type == elf.SHT_NOTE {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return "", err
		}
		sections = append(sections, data)
		if st := buildStamp(data); st != nil {
			stamps = append(stamps, st)
		}
	}
	for i, data := range sections {
		for _, st := range stamps {
			if bytes.Contains(data, st) {
				data = bytes.ReplaceAll(data, st, make([]byte, len(st)))
			}
		}
		fmt.Fprintf(h, "%d:%d:", i, len(data))
		h.Write(data)
	}
	return "elf:" + hex.EncodeToString(h.Sum(nil)), nil
}

// linux_banner: "Linux version <release> (<user>@<host>) (<compiler>) #<n> ..."
var bannerRe = regexp.MustCompile(`Linux version [^\x00\n]* (#\d+[^\x00\n]*)`)

// buildStamp returns UTS_VERSION from the banner in data, if it is there.
func buildStamp(data []byte) []byte {
	i := bytes.Index(data, []byte("Linux version "))
	if i < 0 {
		return nil
	}
	m := bannerRe.FindSubmatch(data[i:min(len(data), i+512)])
	if m == nil {
		return nil
	}
	return []byte(strings.TrimRight(string(m[1]), "\n"))
}

func fileDigest(path string) (string, error) {
	h, err := fsutil.HashFile(path)
	if err != nil {
		return "", err
	}
	return "file:" + h.SHA256, nil
}
