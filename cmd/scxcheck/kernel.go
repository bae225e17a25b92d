package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/scxcheck/scxcheck/kernel"
	"github.com/scxcheck/scxcheck/kernel/build"
	"github.com/scxcheck/scxcheck/kernel/debian"
	"github.com/scxcheck/scxcheck/vm"
)

// kernelFlags are the flags every command that boots a kernel takes.
type kernelFlags struct {
	kernel  string   // the last --kernel
	kernels listFlag // every --kernel, for run's kernel matrix
	cache   string
	mirror  string
	accel   string
	tcg     string
	qemu    string
	build   buildFlags // --tree, --patch: build the kernel from source
}

func (k *kernelFlags) register(fs *flag.FlagSet) {
	fs.Func("kernel", "boot this `kernel`: an image (bzImage or ELF vmlinux), a Debian cloud kernel release (e.g. 7.3.4+deb13-cloud-amd64, fetched into the cache) or 'default'; 'scxcheck run' takes it more than once to test several kernels", func(v string) error {
		if v == "" {
			return fmt.Errorf("empty kernel")
		}
		k.kernel = v
		k.kernels = append(k.kernels, v)
		return nil
	})
	fs.StringVar(&k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&k.mirror, "mirror", "", "Debian mirror `URL` for the default kernel (default: the one in the machine's apt sources)")
	fs.StringVar(&k.accel, "accel", "auto", "QEMU accelerator: auto (KVM if a probe boot works, else TCG), kvm or tcg")
	fs.StringVar(&k.tcg, "tcg-threads", "single", "TCG threading: single (default; multi races with the kernel's live code patching on QEMU 7.2) or multi")
	fs.StringVar(&k.qemu, "qemu", "qemu-system-x86_64", "QEMU `binary`")
	k.build.registerSource(fs)
}

func (k *kernelFlags) cacheDir() (string, error) {
	if k.cache != "" {
		return k.cache, nil
	}
	d, err := debian.DefaultCacheDir()
	if err != nil {
		return "", badInput(fmt.Errorf("find the cache directory: %w (pass --cache)", err))
	}
	return d, nil
}

// checkQEMU fails early, with what to install, when QEMU is missing.
func (k *kernelFlags) checkQEMU() error {
	if _, err := vm.CheckQEMU(k.qemu); err != nil {
		return infraError(err)
	}
	return nil
}

func (k *kernelFlags) tcgThreads() (vm.TCGThreads, error) {
	t, err := vm.ParseTCGThreads(k.tcg)
	if err != nil {
		return "", usageErrorf("--tcg-threads: %v", err)
	}
	return t, nil
}

func (k *kernelFlags) accelerator() (vm.Accel, error) {
	a, err := vm.ParseAccel(k.accel)
	if err != nil {
		return "", usageErrorf("--accel: %v", err)
	}
	return a, nil
}

// image resolves the kernel to boot: --kernel, else one built from --tree
// and --patch (or taken from the build cache), else the newest complete
// cached Debian kernel, else a fresh fetch.
func (k *kernelFlags) image(ctx context.Context, log io.Writer) (*kernel.Image, *build.Result, error) {
	if k.build.requested() {
		if k.kernel != "" {
			return nil, nil, usageErrorf("--kernel and --tree/--patch exclude each other: boot a kernel, or build one")
		}
		res, err := k.buildKernel(ctx, log)
		if err != nil {
			return nil, nil, err
		}
		return res.Image, res, nil
	}
	img, err := k.prebuilt(ctx, log)
	return img, nil, err
}

// prebuilt resolves --kernel, else the cached or freshly fetched Debian kernel.
func (k *kernelFlags) prebuilt(ctx context.Context, log io.Writer) (*kernel.Image, error) {
	if k.kernel != "" && k.kernel != "default" {
		if _, err := os.Stat(k.kernel); err != nil && debian.IsRelease(k.kernel) {
			return k.fetch(ctx, k.kernel, log) // a Debian release, not a file
		}
		img, err := kernel.Open(k.kernel)
		if err != nil {
			return nil, badInput(err)
		}
		if err := img.CheckConfig(); err != nil {
			return nil, badInput(err)
		}
		return img, nil
	}
	dir, err := k.cacheDir()
	if err != nil {
		return nil, err
	}
	img, err := debian.Cached(dir, "")
	if err == nil {
		return img, nil
	}
	if !errors.Is(err, debian.ErrNotCached) {
		return nil, infraError(err)
	}
	fmt.Fprintf(log, "scxcheck: %v; fetching the default kernel\n", err)
	return k.fetch(ctx, "", log)
}

func (k *kernelFlags) fetch(ctx context.Context, version string, log io.Writer) (*kernel.Image, error) {
	return k.fetchWith(ctx, &debian.Fetcher{Version: version}, log)
}

// fetchWith runs f with the cache, mirror and log of k.
func (k *kernelFlags) fetchWith(ctx context.Context, f *debian.Fetcher, log io.Writer) (*kernel.Image, error) {
	dir, err := k.cacheDir()
	if err != nil {
		return nil, err
	}
	f.CacheDir = dir
	f.Mirror = k.mirror
	f.Log = func(format string, args ...any) { fmt.Fprintf(log, "scxcheck: "+format+"\n", args...) }
	img, err := f.Fetch(ctx)
	if err != nil {
		if errors.Is(err, kernel.ErrConfig) || errors.Is(err, debian.ErrUnknownVersion) {
			return nil, badInput(err)
		}
		return nil, infraError(err)
	}
	return img, nil
}

func cmdKernelFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var k kernelFlags
	var version string
	var latest bool
	fs := newFlagSet("kernel fetch", `Fetches Debian's prebuilt cloud-amd64 kernel with CONFIG_EXT_SUB_SCHED=y into the cache,
using apt-get with a private configuration under the cache directory: /etc/apt is never
changed and nothing is installed into the system. Extracts the uncompressed vmlinux for
the faster PVH boot, checks the config, and prints the path.

Without --version it fetches the default kernel: the release resolved through the
linux-image-cloud-amd64 metapackage of Debian unstable (trixie-backports as fallback)
the first time, remembered in the cache after that. Fetching another --version never
changes the default; --latest resolves the metapackage again and makes the result the
new default.`, stdout)
	fs.StringVar(&version, "version", "", "fetch this kernel `release`, e.g. 7.3.4+deb13-cloud-amd64 (default: the default kernel)")
	fs.BoolVar(&latest, "latest", false, "resolve the current release through Debian's metapackage and make it the default kernel")
	var list bool
	fs.BoolVar(&list, "list", false, "list the Debian cloud kernels with sub-schedulers (7.1 or newer) the mirror offers, per suite, and fetch nothing")
	fs.StringVar(&k.cache, "cache", "", "cache `directory` (default $XDG_CACHE_HOME/scxcheck or ~/.cache/scxcheck)")
	fs.StringVar(&k.mirror, "mirror", "", "Debian mirror `URL` (default: the one in the machine's apt sources)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if latest && version != "" {
		return usageErrorf("kernel fetch: --latest and --version exclude each other")
	}
	if list {
		if latest || version != "" {
			return usageErrorf("kernel fetch: --list fetches nothing; it takes neither --version nor --latest")
		}
		return listKernels(ctx, &k, stdout, stderr)
	}
	img, err := k.fetchWith(ctx, &debian.Fetcher{Version: version, Latest: latest}, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, img.Boot)
	return nil
}

// target is what a command that boots a kernel resolves from kernelFlags.
type target struct {
	img     *kernel.Image
	built   *build.Result // nil unless built from --tree/--patch
	accel   vm.Accel
	threads vm.TCGThreads
	cov     *coverageRun // nil unless run --coverage
}

// resolve checks the accelerator flags, resolves the kernel (fetching or
// building it if need be) and checks that QEMU is there: the common start of
// every command that boots a VM.
func (k *kernelFlags) resolve(ctx context.Context, log io.Writer) (target, error) {
	if len(k.kernels) > 1 {
		return target{}, usageErrorf("--kernel given %d times: only 'scxcheck run' tests several kernels", len(k.kernels))
	}
	accel, err := k.accelerator()
	if err != nil {
		return target{}, err
	}
	threads, err := k.tcgThreads()
	if err != nil {
		return target{}, err
	}
	img, built, err := k.image(ctx, log)
	if err != nil {
		return target{}, err
	}
	if err := k.checkQEMU(); err != nil {
		return target{}, err
	}
	return target{img: img, built: built, accel: accel, threads: threads}, nil
}

// listKernels prints what `kernel fetch --list` finds.
func listKernels(ctx context.Context, k *kernelFlags, stdout, stderr io.Writer) error {
	dir, err := k.cacheDir()
	if err != nil {
		return err
	}
	f := &debian.Fetcher{CacheDir: dir, Mirror: k.mirror,
		Log: func(format string, args ...any) { fmt.Fprintf(stderr, "scxcheck: "+format+"\n", args...) }}
	ls, err := f.List(ctx)
	if err != nil {
		return infraError(err)
	}
	if len(ls) == 0 {
		fmt.Fprintln(stdout, "no Debian cloud kernel with sub-schedulers (7.1 or newer) on this mirror")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RELEASE\tSUITE\tSTATE")
	for _, l := range ls {
		state := "not cached (EXT_SUB_SCHED=y expected: series 7.1 or newer; checked on fetch)"
		if l.Cached {
			state = "cached, config checked"
		}
		if l.Default {
			state += ", default"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Release, l.Suite, state)
	}
	return tw.Flush()
}
