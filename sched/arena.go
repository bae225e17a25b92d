package sched

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// A fixture's arena map is where Linux 7.3's capability kfuncs take their
// CPU masks (struct scx_cmask): the fixtures never touch arena memory
// themselves (cilium/ebpf v0.22.0 cannot load the instructions that would),
// so the host side writes and reads the masks here, through a mapping of
// the arena into this process, and hands their arena addresses to the BPF
// code in .bss variables.

// Cmask header layout: {u32 base; u32 nr_cids; u32 alloc_words; u64 bits[]}.
const (
	cmaskHeader = 16 // bits[] is 8-byte aligned
	pageSize    = 4096
)

// Offsets in the parent fixture's scratch page (the arena page its init
// reserves and publishes in scratch_page).
const (
	scratchGrant  = 0    // grant_cmask: what sub_attach grants on
	scratchDenied = 1024 // denied_cmask: what sub_attach could not grant
	scratchCmd    = 2048 // cmd.cmask
	scratchOut    = 3072 // cmd.out
)

// EncodeCmask returns the bytes of a struct scx_cmask covering cids
// [0, nrCids) with the given cids set.
func EncodeCmask(nrCids int, cids []int) ([]byte, error) {
	words := (nrCids+63)/64 + 1 // SCX_CMASK_NR_WORDS
	b := make([]byte, cmaskHeader+8*words)
	binary.NativeEndian.PutUint32(b[0:], 0)
	binary.NativeEndian.PutUint32(b[4:], uint32(nrCids))
	binary.NativeEndian.PutUint32(b[8:], uint32(words))
	for _, c := range cids {
		if c < 0 || c >= nrCids {
			return nil, fmt.Errorf("cid %d outside [0, %d)", c, nrCids)
		}
		w := cmaskHeader + 8*(c/64)
		binary.NativeEndian.PutUint64(b[w:], binary.NativeEndian.Uint64(b[w:])|1<<(c%64))
	}
	return b, nil
}

// DecodeCmask returns the cids set in a struct scx_cmask.
func DecodeCmask(b []byte) ([]int, error) {
	if len(b) < cmaskHeader {
		return nil, fmt.Errorf("cmask: %d bytes, shorter than its header", len(b))
	}
	base := int(binary.NativeEndian.Uint32(b[0:]))
	nr := int(binary.NativeEndian.Uint32(b[4:]))
	words := int(binary.NativeEndian.Uint32(b[8:]))
	if len(b) < cmaskHeader+8*words || nr > 64*words {
		return nil, fmt.Errorf("cmask: base %d nr_cids %d alloc_words %d does not fit %d bytes", base, nr, words, len(b))
	}
	// Bit i of bits[] is cid (base &^ 63) + i (the kernel's cmask keeps bits
	// at their absolute position within 64-bit words).
	first := base &^ 63
	var cids []int
	for c := base; c < base+nr; c++ {
		i := c - first
		if binary.NativeEndian.Uint64(b[cmaskHeader+8*(i/64):])&(1<<(i%64)) != 0 {
			cids = append(cids, c)
		}
	}
	return cids, nil
}

// arena returns the collection's arena map.
func (s *Scheduler) arena() (*ebpf.Map, uint64, error) {
	if s.coll == nil {
		return nil, 0, fmt.Errorf("sched: %q is closed", s.name)
	}
	for name, ms := range s.spec.Maps {
		if ms.Type == ebpf.Arena {
			m := s.coll.Maps[name]
			if m == nil {
				break
			}
			return m, ms.MapExtra, nil
		}
	}
	return nil, 0, fmt.Errorf("sched: %q has no arena map", s.name)
}

// withArena maps the scheduler's arena into this process at its user
// address, calls f with the whole arena as a byte slice, and unmaps it.
// Mapping per call keeps two schedulers' arenas, which share one fixed user
// address, from colliding.
func (s *Scheduler) withArena(f func(mem []byte) error) error {
	m, start, err := s.arena()
	if err != nil {
		return err
	}
	size := uintptr(m.MaxEntries()) * uintptr(os.Getpagesize())
	addr := unsafe.Add(unsafe.Pointer(nil), uintptr(start))
	p, err := unix.MmapPtr(m.FD(), 0, addr, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED_NOREPLACE)
	if err != nil {
		return fmt.Errorf("sched: %q: map the arena at %#x (%d bytes): %w", s.name, start, size, err)
	}
	defer unix.MunmapPtr(p, size)
	return f(unsafe.Slice((*byte)(p), size))
}

// arenaOffset turns an arena address as BPF sees it (the user address, or
// the 32-bit offset struct_ops arguments carry) into an offset.
func arenaOffset(addr uint64) int { return int(uint32(addr)) }

// ReadArena returns n bytes at an arena address.
func (s *Scheduler) ReadArena(addr uint64, n int) ([]byte, error) {
	var out []byte
	err := s.withArena(func(mem []byte) error {
		off := arenaOffset(addr)
		if off+n > len(mem) {
			return fmt.Errorf("sched: %q: arena read of %d bytes at %#x beyond its %d bytes", s.name, n, addr, len(mem))
		}
		out = slices.Clone(mem[off : off+n])
		return nil
	})
	return out, err
}

// ReadCmask returns the cids set in the cmask at an arena address.
func (s *Scheduler) ReadCmask(addr uint64) ([]int, error) {
	var cids []int
	err := s.withArena(func(mem []byte) error {
		off := arenaOffset(addr)
		if off+cmaskHeader > len(mem) {
			return fmt.Errorf("sched: %q: cmask at %#x beyond the arena", s.name, addr)
		}
		words := int(binary.NativeEndian.Uint32(mem[off+8:]))
		end := off + cmaskHeader + 8*words
		if words > pageSize/8 || end > len(mem) {
			return fmt.Errorf("sched: %q: cmask at %#x claims %d words", s.name, addr, words)
		}
		var err error
		cids, err = DecodeCmask(mem[off:end])
		return err
	})
	return cids, err
}

func (s *Scheduler) writeArena(addr uint64, data []byte) error {
	return s.withArena(func(mem []byte) error {
		off := arenaOffset(addr)
		if off+len(data) > len(mem) {
			return fmt.Errorf("sched: %q: arena write of %d bytes at %#x beyond its %d bytes", s.name, len(data), addr, len(mem))
		}
		copy(mem[off:], data)
		return nil
	})
}

// SetVar writes a .bss or .data variable of the loaded scheduler.
func (s *Scheduler) SetVar(name string, v any) error {
	if s.coll == nil {
		return fmt.Errorf("sched: %q is closed", s.name)
	}
	vr := s.coll.Variables[name]
	if vr == nil {
		return fmt.Errorf("sched: %q has no variable %s", s.name, name)
	}
	if err := vr.Set(v); err != nil {
		return fmt.Errorf("sched: %q: set %s: %w", s.name, name, err)
	}
	return nil
}

func (s *Scheduler) getU64(name string) (uint64, error) {
	if s.coll == nil {
		return 0, fmt.Errorf("sched: %q is closed", s.name)
	}
	vr := s.coll.Variables[name]
	if vr == nil {
		return 0, fmt.Errorf("sched: %q has no variable %s", s.name, name)
	}
	var v uint64
	if err := vr.Get(&v); err != nil {
		return 0, fmt.Errorf("sched: %q: read %s: %w", s.name, name, err)
	}
	return v, nil
}

// scratch returns the parent fixture's scratch page and nr_cids.
func (s *Scheduler) scratch() (page uint64, nrCids int, err error) {
	page, err = s.getU64("scratch_page")
	if err != nil {
		return 0, 0, err
	}
	if page == 0 {
		return 0, 0, fmt.Errorf("sched: %q: its init reserved no arena page (scratch_page is 0)", s.name)
	}
	n, err := s.getU64("nr_cids")
	if err != nil {
		return 0, 0, err
	}
	return page, int(n), nil
}

// SetGrantMask makes the parent fixture's sub_attach grant on the given cids
// only (nil: the kernel's online cmask again), and, with denied, collect the
// cids it could not grant in a mask that GrantDenied reads.
func (s *Scheduler) SetGrantMask(cids []int, denied bool) error {
	page, nr, err := s.scratch()
	if err != nil {
		return err
	}
	var grant, deny uint64
	if cids != nil {
		b, err := EncodeCmask(nr, cids)
		if err != nil {
			return fmt.Errorf("sched: %q: grant mask: %w", s.name, err)
		}
		if err := s.writeArena(page+scratchGrant, b); err != nil {
			return err
		}
		grant = page + scratchGrant
	}
	if denied {
		b, _ := EncodeCmask(nr, nil)
		if err := s.writeArena(page+scratchDenied, b); err != nil {
			return err
		}
		deny = page + scratchDenied
	}
	if err := s.SetVar("grant_cmask", grant); err != nil {
		return err
	}
	return s.SetVar("denied_cmask", deny)
}

// GrantDenied reads the cids sub_attach could not grant (see SetGrantMask).
func (s *Scheduler) GrantDenied() ([]int, error) {
	page, _, err := s.scratch()
	if err != nil {
		return nil, err
	}
	return s.ReadCmask(page + scratchDenied)
}

// Commands the parent fixture runs from its ops.dispatch.
const (
	CmdGrant  = 1 // scx_bpf_sub_grant(cgid, caps, cmask, out)
	CmdRevoke = 2 // scx_bpf_sub_revoke(cgid, caps, cmask)
	CmdCaps   = 3 // scx_bpf_sub_caps(cgid, caps, out)
	CmdKill   = 4 // scx_bpf_sub_kill_bstr(cgid, "killed by scxcheck parent cgroup <cgid>")
	CmdExit   = 5 // scx_bpf_exit(caps, ...): any kernel
	CmdError  = 6 // scx_bpf_error(...): any kernel
)

// ErrCommandTimeout is returned by Command when no ops.dispatch of the
// scheduler ran the command in time (the scheduler exited, say).
var ErrCommandTimeout = errors.New("no ops.dispatch ran the command")

// CommandResult is what a capability command returned.
type CommandResult struct {
	Ret int64 // the kfunc's return value (0 for revoke)
	Out []int // the cids in the out mask (CmdGrant: denied; CmdCaps: held)
}

// Command runs one capability kfunc inside the parent fixture (see the
// fixture's "Commands"): cids nil means the kernel's online cmask, out
// asks for an out mask (denied cids for CmdGrant, required for CmdCaps).
// It waits, up to ctx's deadline, for an ops.dispatch to run it.
func (s *Scheduler) Command(ctx context.Context, op int, cgid, caps uint64, cids []int, out bool) (CommandResult, error) {
	page, nr, err := s.scratch()
	if err != nil {
		return CommandResult{}, err
	}
	var cmaskAddr, outAddr uint64
	if cids != nil {
		b, err := EncodeCmask(nr, cids)
		if err != nil {
			return CommandResult{}, fmt.Errorf("sched: %q: command mask: %w", s.name, err)
		}
		if err := s.writeArena(page+scratchCmd, b); err != nil {
			return CommandResult{}, err
		}
		cmaskAddr = page + scratchCmd
	}
	if out {
		b, _ := EncodeCmask(nr, nil)
		if err := s.writeArena(page+scratchOut, b); err != nil {
			return CommandResult{}, err
		}
		outAddr = page + scratchOut
	}
	done, err := s.getU64("cmd_done")
	if err != nil {
		return CommandResult{}, err
	}
	type command struct{ Seq, Op, Cgid, Caps, Cmask, Out uint64 }
	c := command{Op: uint64(op), Cgid: cgid, Caps: caps, Cmask: cmaskAddr, Out: outAddr}
	// Fields first, seq last: the BPF side starts on a new seq.
	if err := s.SetVar("cmd", c); err != nil {
		return CommandResult{}, err
	}
	c.Seq = done + 1
	if err := s.SetVar("cmd", c); err != nil {
		return CommandResult{}, err
	}
	for {
		d, err := s.getU64("cmd_done")
		if err != nil {
			return CommandResult{}, err
		}
		if d == c.Seq {
			break
		}
		select {
		case <-ctx.Done():
			return CommandResult{}, fmt.Errorf("sched: %q: command %d on cgroup %d: %w (%w)", s.name, op, cgid, ErrCommandTimeout, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	ret, err := s.getU64("cmd_ret")
	if err != nil {
		return CommandResult{}, err
	}
	res := CommandResult{Ret: int64(ret)}
	if out {
		if res.Out, err = s.ReadCmask(outAddr); err != nil {
			return res, err
		}
	}
	return res, nil
}
