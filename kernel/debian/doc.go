// Package debian fetches Debian's prebuilt cloud-amd64 kernel, which is
// built with sched_ext sub-schedulers (CONFIG_EXT_SUB_SCHED=y), for scxcheck
// to boot when the user brings no kernel of their own.
//
// A Fetcher asks apt-get for the kernel with a private apt configuration
// kept under its cache directory: its own sources list (Debian unstable, or
// trixie-backports when unstable has no suitable kernel), package lists and
// downloads. It never reads or changes the machine's /etc/apt sources or
// package state; apt still checks signatures against the machine's Debian
// archive keyring.
//
// Each fetched kernel becomes a kernel/cache entry,
// CacheDir/kernels/<release>/, holding vmlinuz, the vmlinux extracted from
// it, config and System.map, with a manifest (scxcheck-kernel.json) written
// last, so that Cached can tell a complete entry from one cut short or
// changed. CacheDir/kernels/DEFAULT names the default kernel's release.
//
// Errors wrap ErrMirror when the Debian mirror cannot be used,
// ErrUnknownVersion for a version Debian does not have, ErrNotCached from
// Cached, and kernel.ErrConfig when a kernel lacks what scxcheck needs.
package debian
