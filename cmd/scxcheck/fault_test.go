package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"rsc.io/script"

	"github.com/scxcheck/scxcheck/internal/fakeqemu"
	"github.com/scxcheck/scxcheck/internal/fsutil"
	"github.com/scxcheck/scxcheck/internal/runner"
	"github.com/scxcheck/scxcheck/kernel/cache/cachetest"
	"github.com/scxcheck/scxcheck/kernel/debian"
)

// registerFaultScripts adds what the fault, soak and parallel scripts
// (testdata/fault_*.txt, soak.txt, parallel.txt) need: a condition for a
// cached default kernel and QEMU, and commands to break things and to check
// that nothing leaked.
func registerFaultScripts(t *testing.T, e *script.Engine) {
	// The VM's init: a static scxcheck-agent, built once. Scripts run in
	// their own directories, outside the module, where scxcheck could not
	// build it itself.
	var (
		once     sync.Once
		agent    string
		agentErr error
	)
	agentDir := t.TempDir()
	e.Cmds["agent"] = script.Command(script.CmdUsage{Summary: "build a static scxcheck-agent once; sets SCXCHECK_AGENT"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			once.Do(func() {
				agent = filepath.Join(agentDir, "scxcheck-agent")
				cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", agent, "../scxcheck-agent")
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					agentErr = fmt.Errorf("build scxcheck-agent: %v\n%s", err, out)
				}
			})
			if agentErr != nil {
				return nil, agentErr
			}
			return nil, s.Setenv("SCXCHECK_AGENT", agent)
		})

	e.Conds["kernel"] = script.Condition("a complete cached default kernel and qemu-system-x86_64 (VM tests)",
		func(*script.State) (bool, error) {
			_, _, err := defaultEntry()
			_, qerr := exec.LookPath("qemu-system-x86_64")
			return err == nil && qerr == nil, nil
		})
	e.Cmds["fakeqemu"] = script.Command(script.CmdUsage{Summary: "write a QEMU that fails like KVM on a PVM host", Args: "dir"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			_, err := fakeqemu.Write(s.Path(args[0]), "")
			return nil, err
		})
	e.Cmds["cpentry"] = script.Command(script.CmdUsage{Summary: "copy the cached default kernel into a cache directory as its default; sets REL", Args: "cachedir"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			from, rel, err := defaultEntry()
			if err != nil {
				return nil, err
			}
			dst := filepath.Join(s.Path(args[0]), "kernels", rel)
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(from)
			if err != nil {
				return nil, err
			}
			for _, e := range ents {
				if !e.Type().IsRegular() {
					continue
				}
				if err := fsutil.CopyFile(filepath.Join(from, e.Name()), filepath.Join(dst, e.Name())); err != nil {
					return nil, err
				}
			}
			// ... and remember it as that cache's default kernel.
			if err := os.WriteFile(filepath.Join(s.Path(args[0]), "kernels", "DEFAULT"), []byte(rel+"\n"), 0o644); err != nil {
				return nil, err
			}
			return nil, s.Setenv("REL", rel)
		})
	e.Cmds["flipbyte"] = script.Command(script.CmdUsage{Summary: "invert the byte in the middle of a file", Args: "file"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			return nil, cachetest.FlipByte(s.Path(args[0]))
		})
	e.Cmds["noleaks"] = script.Command(script.CmdUsage{Summary: "check a run left nothing behind", Args: "tmpdir",
		Detail: []string{"The run's TMPDIR holds nothing, no process mentions it (QEMU's command line names its sockets there), and the default kernel cache entry is intact."}},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 1 {
				return nil, script.ErrUsage
			}
			return nil, noLeaks(s.Path(args[0]))
		})
	e.Cmds["samespecs"] = script.Command(script.CmdUsage{Summary: "check two Ginkgo JSON reports have the same specs with the same outcomes", Args: "a.json b.json"},
		func(s *script.State, args ...string) (script.WaitFunc, error) {
			if len(args) != 2 {
				return nil, script.ErrUsage
			}
			return nil, sameSpecs(s.Path(args[0]), s.Path(args[1]))
		})
}

// defaultEntry returns the directory and release of the newest complete
// cached default kernel.
func defaultEntry() (dir, release string, err error) {
	cache, err := debian.DefaultCacheDir()
	if err != nil {
		return "", "", err
	}
	img, err := debian.Cached(cache, "")
	if err != nil {
		return "", "", err
	}
	dir = filepath.Dir(img.Boot)
	return dir, filepath.Base(dir), nil
}

func noLeaks(tmp string) error {
	var problems []string
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		problems = append(problems, "left in "+tmp+": "+e.Name())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), tmp) {
			problems = append(problems, fmt.Sprintf("process %s still runs: %s", filepath.Base(filepath.Dir(p)), strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	if _, _, err := defaultEntry(); err != nil {
		problems = append(problems, "default kernel cache entry: "+err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("leaks:\n%s", strings.Join(problems, "\n"))
	}
	return nil
}

func sameSpecs(a, b string) error {
	states := func(path string) (map[string]string, error) {
		specs, err := runner.ReadReport(path)
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		for _, s := range specs {
			m[s.Text] = s.State
		}
		return m, nil
	}
	sa, err := states(a)
	if err != nil {
		return err
	}
	sb, err := states(b)
	if err != nil {
		return err
	}
	var diffs []string
	for text, st := range sa {
		if sb[text] != st {
			diffs = append(diffs, fmt.Sprintf("%q: %s in %s, %q in %s", text, st, a, sb[text], b))
		}
	}
	for text, st := range sb {
		if _, ok := sa[text]; !ok {
			diffs = append(diffs, fmt.Sprintf("%q: only in %s (%s)", text, b, st))
		}
	}
	if len(sa) == 0 {
		diffs = append(diffs, "no specs ran")
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return fmt.Errorf("reports differ:\n%s", strings.Join(diffs, "\n"))
	}
	return nil
}
