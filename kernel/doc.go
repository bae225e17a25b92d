// Package kernel describes a Linux kernel for scxcheck to boot, and checks
// that it can run sched_ext sub-schedulers.
//
// Open takes what a user passes as --kernel (a bzImage, an uncompressed ELF
// vmlinux, or a kernel build tree) and returns an Image: the file QEMU should
// boot, the other form when it lies beside it, the kernel's .config when one
// is found, and the release string. Image.CheckConfig reads that config and
// names every symbol in RequiredSymbols the kernel lacks. ExtractVmlinux
// unpacks the ELF vmlinux from a bzImage, which boots faster under QEMU (PVH
// entry, no decompression in the guest).
//
// Errors say what was being done and with which file, and wrap ErrNotKernel
// (the file is no kernel scxcheck can boot) or ErrConfig (the kernel lacks
// a required option) so a caller can tell user mistakes from other failures
// with errors.Is.
package kernel
