package debian

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultMirror is the Debian mirror used when the machine's apt
// configuration names none.
const DefaultMirror = "http://deb.debian.org/debian"

// MirrorFromSystem returns the first http(s) Debian archive URI, one whose
// path ends in /debian (not debian-security, not a snapshot) and whose entry
// has the main component (which third-party repositories such as
// download.docker.com/linux/debian lack), in the
// machine's apt sources: /etc/apt/sources.list, then the *.list and
// *.sources files of /etc/apt/sources.list.d in name order, as apt reads
// them. Disabled deb822 entries and comments are skipped.
func MirrorFromSystem() (string, error) {
	return mirrorFromAptDir("/etc/apt")
}

// mirrorFromAptDir is MirrorFromSystem for the apt configuration in etc.
func mirrorFromAptDir(etc string) (string, error) {
	files := []string{filepath.Join(etc, "sources.list")}
	parts, err := os.ReadDir(filepath.Join(etc, "sources.list.d"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("find Debian mirror: %w", err)
	}
	var names []string
	for _, e := range parts {
		if n := e.Name(); strings.HasSuffix(n, ".list") || strings.HasSuffix(n, ".sources") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		files = append(files, filepath.Join(etc, "sources.list.d", n))
	}

	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("find Debian mirror: %w", err)
		}
		var sources []source
		if strings.HasSuffix(f, ".sources") {
			sources = deb822Sources(string(data))
		} else {
			sources = oneLineSources(string(data))
		}
		for _, src := range sources {
			if !slices.Contains(src.components, "main") {
				continue
			}
			if m, ok := debianArchive(src.uri); ok {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("find Debian mirror: no http(s) Debian archive (a URI ending in /debian) in %s or %s",
		filepath.Join(etc, "sources.list"), filepath.Join(etc, "sources.list.d"))
}

// source is one URI of an apt source entry.
type source struct {
	uri        string
	components []string
}

// oneLineSources returns the deb and deb-src lines of a sources.list, e.g.
// "deb [arch=amd64] http://deb.debian.org/debian bookworm main".
func oneLineSources(data string) []source {
	var sources []source
	s := bufio.NewScanner(strings.NewReader(data))
	for s.Scan() {
		line, _, _ := strings.Cut(s.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 || (fields[0] != "deb" && fields[0] != "deb-src") {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			// Options, which may hold spaces: "[ arch=amd64 signed-by=/k ]".
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) >= 2 {
			sources = append(sources, source{uri: fields[0], components: fields[2:]})
		}
	}
	return sources
}

// deb822Sources returns the URIs of the enabled deb and deb-src stanzas of
// a .sources file.
func deb822Sources(data string) []source {
	var sources []source
	stanza := map[string]string{}
	var last string
	flush := func() {
		types := strings.Fields(stanza["types"])
		enabled := strings.ToLower(strings.TrimSpace(stanza["enabled"]))
		if (slices.Contains(types, "deb") || slices.Contains(types, "deb-src")) && enabled != "no" && enabled != "false" {
			for _, u := range strings.Fields(stanza["uris"]) {
				sources = append(sources, source{uri: u, components: strings.Fields(stanza["components"])})
			}
		}
		stanza = map[string]string{}
		last = ""
	}
	s := bufio.NewScanner(strings.NewReader(data))
	for s.Scan() {
		line := s.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				stanza[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			stanza[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return sources
}

// debianArchive reports whether uri is an http(s) Debian archive and
// returns it without a trailing slash.
func debianArchive(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	p := strings.TrimRight(u.Path, "/")
	if path.Base(p) != "debian" {
		return "", false
	}
	u.Path = p
	u.RawPath = ""
	return u.String(), true
}
