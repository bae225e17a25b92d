package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/scxcheck/scxcheck/initramfs"
	"github.com/scxcheck/scxcheck/vm"
)

// Targets of the boot benchmark under TCG on a 2-core machine.
const (
	targetReady = 3 * time.Second
	targetRatio = 1.15
)

func cmdBenchBoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var k kernelFlags
	var runs int
	fs := newFlagSet("bench boot", `Boots the kernel N times to agent-ready and, interleaved in the same run, N times
with a trivial init that powers off at once (the bare boot), and prints the medians
and their ratio. Both are also timed start-to-exit, so the ratio compares like with
like: the agent run powers off as soon as it is ready.`, stdout)
	k.register(fs)
	fs.IntVar(&runs, "runs", 5, "boots of each kind")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if runs < 1 {
		return usageErrorf("bench boot: --runs must be at least 1, not %d", runs)
	}
	t, err := k.resolve(ctx, stderr)
	if err != nil {
		return err
	}
	img, accel, threads := t.img, t.accel, t.threads
	dir, err := os.MkdirTemp("", "scxcheck-bench-")
	if err != nil {
		return infraError(err)
	}
	defer os.RemoveAll(dir)
	agentBin, err := vm.AgentBinary(dir)
	if err != nil {
		return infraError(err)
	}
	agentInitrd := filepath.Join(dir, "agent.cpio")
	if err := vm.WriteInitramfs(agentInitrd, agentBin); err != nil {
		return infraError(err)
	}
	var bare initramfs.Archive
	bare.Add(initramfs.File{Name: "/init", Mode: 0o755, Data: vm.PowerOffInit()})
	bareInitrd := filepath.Join(dir, "bare.cpio")
	if err := bare.WriteFile(bareInitrd); err != nil {
		return infraError(err)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "scxcheck: "+format+"\n", args...) }
	cfg := vm.Config{Kernel: img.Boot, Accel: accel, TCGThreads: threads, QEMU: k.qemu, Log: logf}

	// A first boot resolves the accelerator; it is not measured.
	logf("warm-up boot of %s (%s)", img.Boot, accel)
	cfg.Initramfs = agentInitrd
	m, err := vm.Boot(ctx, cfg)
	if err != nil {
		return infraError(err)
	}
	cfg.Accel = m.Accel()
	if err := m.Shutdown(ctx); err != nil {
		return infraError(err)
	}

	var ready, agentExit, bareExit []time.Duration
	for i := range runs {
		cfg.Initramfs = bareInitrd
		d, err := bareBoot(ctx, cfg)
		if err != nil {
			return infraError(err)
		}
		bareExit = append(bareExit, d)

		cfg.Initramfs = agentInitrd
		r, e, err := agentBoot(ctx, cfg)
		if err != nil {
			return infraError(err)
		}
		ready, agentExit = append(ready, r), append(agentExit, e)
		logf("run %d/%d: bare %s, agent ready %s, agent to exit %s", i+1, runs, ms(d), ms(r), ms(e))
	}
	mr, me, mb := median(ready), median(agentExit), median(bareExit)
	ratio := float64(me) / float64(mb)
	fmt.Fprintf(stdout, "boot benchmark: %s, accel %s (TCG threads: %s), %d runs each, medians:\n", filepath.Base(img.Boot), cfg.Accel, threads, runs)
	fmt.Fprintf(stdout, "  agent ready            %8s  (target ≤ %s: %s)\n", ms(mr), targetReady, verdict(mr <= targetReady))
	fmt.Fprintf(stdout, "  agent, start to exit   %8s\n", ms(me))
	fmt.Fprintf(stdout, "  bare,  start to exit   %8s\n", ms(mb))
	fmt.Fprintf(stdout, "  ratio agent/bare       %8.3f  (target ≤ %.2f: %s)\n", ratio, targetRatio, verdict(ratio <= targetRatio))
	return nil
}

// bareBoot times a boot with the power-off init, from start to QEMU's exit.
func bareBoot(ctx context.Context, cfg vm.Config) (time.Duration, error) {
	m, err := vm.BootBare(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	select {
	case <-m.Exited():
		return time.Since(m.Started()), nil
	case <-time.After(vm.DefaultReadyTimeout):
		return 0, fmt.Errorf("bare boot did not power off in %s:\n%s", vm.DefaultReadyTimeout, m.ConsoleTail(15))
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// agentBoot times a boot to agent-ready, then powers off and times to exit.
func agentBoot(ctx context.Context, cfg vm.Config) (ready, exit time.Duration, err error) {
	m, err := vm.Boot(ctx, cfg)
	if err != nil {
		return 0, 0, err
	}
	defer m.Close()
	ready = m.BootTime()
	if err := m.Agent().PowerOff(ctx); err != nil {
		return 0, 0, err
	}
	select {
	case <-m.Exited():
		return ready, time.Since(m.Started()), nil
	case <-time.After(30 * time.Second):
		return 0, 0, fmt.Errorf("agent did not power off in 30s")
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return d.Round(time.Millisecond).String() }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
