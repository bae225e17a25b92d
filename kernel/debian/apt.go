package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// debianKeyring is the keyring Debian's own sources name in Signed-By. When
// it is missing apt falls back to the machine's trusted keys.
const debianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// apt runs apt-get and apt-cache with a private configuration under dir:
// dir/<suite>/{sources.list,lists/} per suite (so that updating one suite
// keeps the other's lists), dir/archives and dir/cache.
type apt struct {
	dir    string
	mirror string
}

// failureKind says why apt failed.
type failureKind int

const (
	failOther     failureKind = iota
	failNetwork               // the mirror could not be reached or a download failed
	failNotFound              // the mirror has no such suite
	failSignature             // the suite's signature could not be checked
)

// aptFailure is a failed apt command, with its most telling output line.
type aptFailure struct {
	cmd  string // e.g. "apt-get update"
	kind failureKind
	line string
}

func (e *aptFailure) Error() string { return e.cmd + " failed: " + e.line }

// options is the private configuration for suite.
func (a *apt) options(suite string) []string {
	d := filepath.Join(a.dir, suite)
	opts := []string{
		"Dir::Etc::SourceList=" + filepath.Join(d, "sources.list"),
		"Dir::Etc::SourceParts=/dev/null",
		"Dir::Etc::Preferences=/dev/null",
		"Dir::Etc::PreferencesParts=/dev/null",
		"Dir::State::Lists=" + filepath.Join(d, "lists"),
		"Dir::State::Status=/dev/null",
		"Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"Dir::Cache::Archives=" + filepath.Join(a.dir, "archives"),
		"Dir::Cache::pkgcache=", // no 50 MB binary caches: the lists are read a few times only
		"Dir::Cache::srcpkgcache=",
		"APT::Architecture=amd64",
		"APT::Architectures=amd64",
		"Acquire::Languages=none",
		"Acquire::Retries=0",
		"Acquire::http::Timeout=10",
		"Acquire::https::Timeout=10",
	}
	if os.Geteuid() == 0 {
		// apt would drop to _apt to download, which cannot write here.
		opts = append(opts, "APT::Sandbox::User=root")
	}
	var args []string
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

// update writes suite's sources list and downloads its package list.
func (a *apt) update(ctx context.Context, suite string) error {
	d := filepath.Join(a.dir, suite)
	for _, sub := range []string{
		filepath.Join(d, "lists", "partial"),
		filepath.Join(a.dir, "archives", "partial"),
		filepath.Join(a.dir, "cache"),
	} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
	}
	opts := "arch=amd64 target=Packages"
	if _, err := os.Stat(debianKeyring); err == nil {
		opts += " signed-by=" + debianKeyring
	}
	line := fmt.Sprintf("deb [%s] %s %s main\n", opts, a.mirror, suite)
	if err := os.WriteFile(filepath.Join(d, "sources.list"), []byte(line), 0o644); err != nil {
		return err
	}

	stdout, stderr, err := a.run(ctx, "", "apt-get", suite, "update")
	if f := aptFailed("apt-get update", stdout, stderr, err); f != nil {
		return f
	}
	// apt-get update exits 0 when it cannot fetch but still has old lists.
	lists, _ := filepath.Glob(filepath.Join(d, "lists", "*_dists_"+suite+"_*Packages*"))
	if len(lists) == 0 {
		return &aptFailure{cmd: "apt-get update", kind: failNotFound, line: "no package list for " + suite}
	}
	return nil
}

// pkg is a binary package as apt-cache show describes it.
type pkg struct {
	Name    string
	Version string
	Size    int64
	Depends string
}

// show returns the candidate versions of the named packages that suite has;
// names it lacks are absent from the map.
func (a *apt) show(ctx context.Context, suite string, names ...string) (map[string]pkg, error) {
	args := append([]string{"show", "--no-all-versions"}, names...)
	stdout, stderr, err := a.run(ctx, "", "apt-cache", suite, args...)
	if err != nil {
		if strings.Contains(stderr, "No packages found") {
			return map[string]pkg{}, nil
		}
		return nil, aptFailed("apt-cache show", stdout, stderr, err)
	}
	pkgs := map[string]pkg{}
	for _, stanza := range strings.Split(stdout, "\n\n") {
		var p pkg
		for _, line := range strings.Split(stanza, "\n") {
			k, v, ok := strings.Cut(line, ": ")
			if !ok || strings.HasPrefix(line, " ") {
				continue
			}
			switch k {
			case "Package":
				p.Name = v
			case "Version":
				p.Version = v
			case "Size":
				p.Size, _ = strconv.ParseInt(v, 10, 64)
			case "Depends":
				p.Depends = v
			}
		}
		if p.Name != "" {
			pkgs[p.Name] = p
		}
	}
	return pkgs, nil
}

var imageDepRE = regexp.MustCompile(`(?:^|[\s,|])linux-image-([0-9][^\s,()]*-` + flavour + `)(?:[\s,(]|$)`)

// resolveMeta returns the release linux-image-cloud-amd64 depends on in
// suite, or "" if suite has no such metapackage.
func (a *apt) resolveMeta(ctx context.Context, suite string) (string, error) {
	meta := "linux-image-" + flavour
	pkgs, err := a.show(ctx, suite, meta)
	if err != nil {
		return "", err
	}
	m := imageDepRE.FindStringSubmatch(pkgs[meta].Depends)
	if m == nil {
		return "", nil
	}
	return m[1], nil
}

var imageNameRE = regexp.MustCompile(`^linux-image-([0-9]\S*-` + flavour + `)$`)

// releases returns the cloud-amd64 kernel releases suite has.
func (a *apt) releases(ctx context.Context, suite string) ([]string, error) {
	stdout, stderr, err := a.run(ctx, "", "apt-cache", suite, "pkgnames", "linux-image-")
	if err != nil {
		return nil, aptFailed("apt-cache pkgnames", stdout, stderr, err)
	}
	var rels []string
	for _, name := range strings.Fields(stdout) {
		if m := imageNameRE.FindStringSubmatch(name); m != nil {
			rels = append(rels, m[1])
		}
	}
	return rels, nil
}

// download fetches packages ("name=version") of suite into dir.
func (a *apt) download(ctx context.Context, suite, dir string, pkgs ...string) error {
	args := append([]string{"download"}, pkgs...)
	stdout, stderr, err := a.run(ctx, dir, "apt-get", suite, args...)
	if f := aptFailed("apt-get download", stdout, stderr, err); f != nil {
		return f
	}
	return nil
}

// run runs an apt command with suite's private configuration.
func (a *apt) run(ctx context.Context, dir, name, suite string, args ...string) (stdout, stderr string, err error) {
	return runCmd(ctx, dir, name, append(a.options(suite), args...)...)
}

// runCmd runs a command in the C locale and returns its output.
func runCmd(ctx context.Context, dir, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	cmd.WaitDelay = 5 * time.Second // apt's download methods may hold the pipes
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.String(), errb.String(), err
}

// aptFailed returns what went wrong with an apt command, or nil. apt
// reports failed downloads as warnings and may still exit 0.
func aptFailed(cmd, stdout, stderr string, err error) *aptFailure {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &aptFailure{cmd: cmd, kind: failOther, line: err.Error()}
	}
	var fetchDetail, lastE, lastW string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "W: Failed to fetch "), strings.HasPrefix(line, "E: Failed to fetch "):
			// "W: Failed to fetch <url>  <detail>"
			rest := line[len("W: Failed to fetch "):]
			if _, detail, ok := strings.Cut(rest, "  "); ok {
				fetchDetail = strings.TrimSpace(detail)
			} else {
				fetchDetail = rest
			}
		case strings.HasPrefix(line, "E: "):
			lastE = line[3:]
		case strings.HasPrefix(line, "W: "):
			if !strings.Contains(line, "Some index files failed to download") {
				lastW = line[3:]
			}
		}
	}
	if err == nil && fetchDetail == "" && lastE == "" {
		return nil // at most warnings that change nothing
	}
	line := firstNonEmpty(fetchDetail, lastE, lastW)
	if line == "" {
		line = firstNonEmpty(lastLine(stderr), lastLine(stdout), err.Error())
	}

	all := stdout + "\n" + stderr
	kind := failOther
	switch {
	case strings.Contains(all, "does not have a Release file"), strings.Contains(all, "404  Not Found"):
		kind = failNotFound
	case strings.Contains(all, "NO_PUBKEY"), strings.Contains(all, "GPG error"),
		strings.Contains(all, "is not signed"), strings.Contains(all, "EXPKEYSIG"):
		kind = failSignature
	case fetchDetail != "", strings.Contains(all, "\nErr:"), strings.HasPrefix(all, "Err:"):
		kind = failNetwork
	}
	return &aptFailure{cmd: cmd, kind: kind, line: line}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
