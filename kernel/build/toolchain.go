package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/scxcheck/scxcheck/kernel/cache"
	"github.com/scxcheck/scxcheck/kernel/debian"
)

// MinPahole is the oldest pahole with which a 7.x kernel gets the BTF the
// fixtures need: from v1.26 pahole emits the kfunc declaration tags
// (--btf_features=decl_tag_kfuncs) from which the kernel generates the
// BPF-visible prototypes of KF_IMPLICIT_ARGS kfuncs such as
// scx_bpf_sub_dispatch. With v1.24 (bookworm's) those kfuncs keep their
// hidden argument in BTF and cilium/ebpf refuses to load the fixtures.
const MinPahole = 126

// lookPath finds commands; tests replace it.
var lookPath = exec.LookPath

// tool is something the build needs from the host.
type tool struct {
	what string // a command, or a header as <gelf.h>
	pkg  string // the Debian package that provides it
}

// configTools are what configuring a kernel needs: make, and the C compiler,
// flex and bison to build Kconfig's own tools.
var configTools = []tool{{"make", "make"}, {"gcc", "gcc"}, {"flex", "flex"}, {"bison", "bison"}}

// buildTools are what building it needs besides pahole: binutils, bc for
// timeconst.h, perl for generated headers, gzip for the compressed payload,
// the libelf headers for objtool and resolve_btfids, the OpenSSL headers for
// the certificate tools.
var buildTools = []tool{
	{"ld", "binutils"}, {"objcopy", "binutils"}, {"bc", "bc"}, {"perl", "perl"}, {"gzip", "gzip"},
	{"<gelf.h>", "libelf-dev"}, {"<openssl/ssl.h>", "libssl-dev"},
}

// checkToolchain returns an error wrapping ErrToolchain when some of need are
// missing. It names them, and what else of more the build will need, with
// the packages to install.
func checkToolchain(ctx context.Context, r Runner, need, more []tool) error {
	missing, pkgs := missingTools(ctx, r, need)
	if len(missing) == 0 {
		return nil
	}
	m2, p2 := missingTools(ctx, r, more)
	missing = append(missing, m2...)
	for _, p := range p2 {
		if !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	return &wrapError{fmt.Sprintf("building a kernel needs %s, which this machine lacks: on Debian, "+
		"apt-get install %s (or make deps-build)", strings.Join(missing, ", "), strings.Join(pkgs, " ")), []error{ErrToolchain}}
}

// missingTools returns the tools that are not there, and their packages.
func missingTools(ctx context.Context, r Runner, tools []tool) (missing, pkgs []string) {
	for _, t := range tools {
		found := true
		if header, ok := strings.CutPrefix(t.what, "<"); ok {
			found = hasHeader(ctx, r, strings.TrimSuffix(header, ">"))
		} else if _, err := lookPath(t.what); err != nil {
			found = false
		}
		if !found {
			missing = append(missing, t.what)
			if !slices.Contains(pkgs, t.pkg) {
				pkgs = append(pkgs, t.pkg)
			}
		}
	}
	return missing, pkgs
}

// hasHeader reports whether the C compiler finds the header.
func hasHeader(ctx context.Context, r Runner, header string) bool {
	if _, err := lookPath("gcc"); err != nil {
		// Without a compiler, look where Debian puts headers.
		for _, dir := range []string{"/usr/include", "/usr/include/x86_64-linux-gnu", "/usr/local/include"} {
			if _, err := os.Stat(filepath.Join(dir, header)); err == nil {
				return true
			}
		}
		return false
	}
	var out bytes.Buffer
	err := r.Run(ctx, &Cmd{Name: "gcc", Args: []string{"-E", "-x", "c", "-"},
		Stdin: strings.NewReader("#include <" + header + ">\n"), Stdout: &out, Stderr: &out})
	return err == nil
}

// toolVersion returns the first line of `name --version`, "" if it fails.
func toolVersion(ctx context.Context, r Runner, name string) string {
	out, err := output(ctx, r, "", name, "--version")
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(out, "\n")
	return strings.TrimSpace(line)
}

var paholeVersionRE = regexp.MustCompile(`v?(\d+)\.(\d+)`)

// paholeVersion runs pahole --version and returns it as the kernel's
// scripts/pahole-version.sh does (130 for v1.30) and as printed.
func paholeVersion(ctx context.Context, r Runner, pahole string) (int, string, error) {
	out, err := output(ctx, r, "", pahole, "--version")
	if err != nil {
		return 0, "", err
	}
	line := strings.TrimSpace(out)
	m := paholeVersionRE.FindStringSubmatch(line)
	if m == nil {
		return 0, "", fmt.Errorf("%s --version printed %q, not a version", pahole, line)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major*100 + minor, line, nil
}

// paholeSuite is where a new enough pahole comes from on older Debian
// releases: trixie's, unpacked with its libraries into the cache and run
// through its own dynamic loader, so nothing is installed into the system.
const paholeSuite = "trixie"

// findPahole returns the pahole to build with and its version: explicit
// when given (it must be new enough), else the system's when new enough,
// else one provided in cacheDir (downloading Debian trixie's when absent).
func findPahole(ctx context.Context, r Runner, explicit, cacheDir, mirror string, logf func(string, ...any)) (string, string, error) {
	if explicit != "" {
		path, err := lookPath(explicit)
		if err != nil {
			return "", "", &wrapError{fmt.Sprintf("--pahole %s: %v", explicit, unwrapExecError(err)), []error{ErrToolchain}}
		}
		v, line, err := paholeVersion(ctx, r, path)
		if err != nil {
			return "", "", &wrapError{fmt.Sprintf("--pahole %s: %v", explicit, err), []error{ErrToolchain}}
		}
		if v < MinPahole {
			return "", "", &wrapError{fmt.Sprintf("--pahole %s is %s; kernel 7.x needs pahole v1.%d or newer for the BTF of its kfuncs", explicit, line, MinPahole%100), []error{ErrToolchain}}
		}
		abs, _ := filepath.Abs(path)
		return abs, line, nil
	}
	system := "not installed"
	if path, err := lookPath("pahole"); err == nil {
		v, line, err := paholeVersion(ctx, r, path)
		if err == nil && v >= MinPahole {
			return path, line, nil
		}
		if err == nil {
			system = line
		}
	}
	dir := filepath.Join(cacheDir, "build", "pahole-"+paholeSuite)
	wrapper := filepath.Join(dir, "pahole")
	if _, err := os.Stat(wrapper); err != nil {
		logf("the system's pahole is %s; kernel 7.x needs v1.%d or newer for the BTF of its kfuncs: "+
			"downloading Debian %s's pahole and its libraries into %s", system, MinPahole%100, paholeSuite, dir)
		if err := provisionPahole(ctx, cacheDir, mirror, dir); err != nil {
			return "", "", err
		}
	}
	v, line, err := paholeVersion(ctx, r, wrapper)
	if err != nil {
		return "", "", &wrapError{fmt.Sprintf("pahole in %s does not run (remove that directory to fetch it again): %v", dir, err), []error{ErrToolchain}}
	}
	if v < MinPahole {
		return "", "", &wrapError{fmt.Sprintf("pahole in %s is %s, older than v1.%d", dir, line, MinPahole%100), []error{ErrToolchain}}
	}
	logf("using pahole %s from Debian %s (%s, run through its own loader; the system's is %s)", line, paholeSuite, wrapper, system)
	return wrapper, line, nil
}

func unwrapExecError(err error) error {
	if ee, ok := err.(*exec.Error); ok {
		return ee.Err
	}
	return err
}

// provisionPahole downloads pahole and every library it needs from Debian
// trixie with scxcheck's private apt configuration, unpacks them into
// dir/root and writes dir/pahole, a wrapper that runs it through that root's
// own dynamic loader and libraries.
func provisionPahole(ctx context.Context, cacheDir, mirror, dir string) error {
	a, err := debian.NewApt(cacheDir, mirror)
	if err != nil {
		return &wrapError{err.Error(), []error{ErrToolchain, err}}
	}
	if err := a.Update(ctx, paholeSuite); err != nil {
		return fmt.Errorf("fetch Debian %s's pahole: %w", paholeSuite, err)
	}
	pkgs, err := a.DependencyClosure(ctx, paholeSuite, "pahole")
	if err != nil {
		return fmt.Errorf("fetch Debian %s's pahole: %w", paholeSuite, err)
	}
	tmp, err := cache.NewPartial(filepath.Dir(dir), "pahole")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dl := filepath.Join(tmp, "download")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return err
	}
	debs, err := a.Download(ctx, paholeSuite, dl, pkgs...)
	if err != nil {
		return fmt.Errorf("fetch Debian %s's pahole: %w", paholeSuite, err)
	}
	root := filepath.Join(tmp, "root")
	for _, deb := range debs {
		if err := debian.UnpackDeb(ctx, deb, root); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dl); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/pahole")); err != nil {
		return fmt.Errorf("Debian %s's pahole package holds no usr/bin/pahole", paholeSuite)
	}
	// The wrapper names the final root, where tmp is renamed to.
	final := filepath.Join(dir, "root")
	lib := filepath.Join(final, "usr/lib/x86_64-linux-gnu")
	script := fmt.Sprintf("#!/bin/sh\n# Debian %s's pahole (%s), run through its own loader and libraries; written by scxcheck.\n"+
		"exec %s --inhibit-cache --library-path %s %s \"$@\"\n",
		paholeSuite, strings.Join(pkgs, " "), filepath.Join(lib, "ld-linux-x86-64.so.2"), lib, filepath.Join(final, "usr/bin/pahole"))
	if err := os.WriteFile(filepath.Join(tmp, "pahole"), []byte(script), 0o755); err != nil {
		return err
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}
