package kernel

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrConfig is wrapped by errors saying a kernel lacks options scxcheck needs.
var ErrConfig = errors.New("scxcheck needs a kernel with sched_ext sub-schedulers")

// RequiredSymbols are the config symbols a kernel needs, =y, for scxcheck:
// sched_ext with cgroup sub-schedulers and what they depend on. Treat it as
// read-only.
var RequiredSymbols = []string{
	"SCHED_CLASS_EXT",
	"EXT_SUB_SCHED",
	"CGROUPS",
	"BPF_SYSCALL",
	"BPF_JIT",
	"DEBUG_INFO_BTF",
}

// Config is a kernel configuration: "CONFIG_FOO" -> "y", "m", or the value
// as written (strings keep their quotes). Symbols that are not set are
// absent.
type Config map[string]string

// ReadConfig reads a kernel .config file (or a gzip-compressed one, as
// /proc/config.gz).
func ReadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(zr, 64<<20))
		}
		if err != nil {
			return nil, fmt.Errorf("read kernel config %s: gzip: %w", path, err)
		}
	}
	c, err := parseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("read kernel config %s: %w", path, err)
	}
	return c, nil
}

func parseConfig(data []byte) (Config, error) {
	c := make(Config)
	sawSymbol := false
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "# CONFIG_") && strings.HasSuffix(line, " is not set") {
			sawSymbol = true
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") {
			continue
		}
		c[name] = value
		sawSymbol = true
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	if !sawSymbol {
		return nil, errors.New("no CONFIG_ lines: not a kernel config")
	}
	return c, nil
}

// Missing returns the symbols of want, given with or without the CONFIG_
// prefix, that are not =y. It names them with the prefix, in want's order.
func (c Config) Missing(want ...string) []string {
	var missing []string
	for _, sym := range want {
		if !strings.HasPrefix(sym, "CONFIG_") {
			sym = "CONFIG_" + sym
		}
		if c[sym] != "y" {
			missing = append(missing, sym)
		}
	}
	return missing
}

// CheckConfig reads the image's config and returns an error wrapping
// ErrConfig that names every symbol of RequiredSymbols it lacks. Without a
// known config it returns nil: the guest finds out at run time.
func (i *Image) CheckConfig() error {
	if i.Config == "" {
		return nil
	}
	c, err := ReadConfig(i.Config)
	if err != nil {
		return err
	}
	if err := c.Require("kernel config "+i.Config, RequiredSymbols...); err != nil {
		return err
	}
	return nil
}

// Require returns an error wrapping ErrConfig when some of want are not =y,
// naming them after what, e.g. "kernel config /x/config lacks
// CONFIG_SCHED_CLASS_EXT=y, CONFIG_EXT_SUB_SCHED=y: scxcheck needs a kernel
// with sched_ext sub-schedulers".
func (c Config) Require(what string, want ...string) error {
	missing := c.Missing(want...)
	if len(missing) == 0 {
		return nil
	}
	for i, sym := range missing {
		missing[i] = sym + "=y"
	}
	return fmt.Errorf("%s lacks %s: %w", what, strings.Join(missing, ", "), ErrConfig)
}
