package kernel_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scxcheck/scxcheck/kernel"
)

func TestReadConfig(t *testing.T) {
	c, err := kernel.ReadConfig("testdata/config-sub-sched")
	if err != nil {
		t.Fatal(err)
	}
	for sym, want := range map[string]string{
		"CONFIG_SCHED_CLASS_EXT": "y",
		"CONFIG_VIRTIO_BLK":      "m",
		"CONFIG_NR_CPUS":         "64",
		"CONFIG_LOCALVERSION":    `""`,
		"CONFIG_CC_VERSION_TEXT": `"x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4) 16.2.0"`,
	} {
		if c[sym] != want {
			t.Errorf("%s = %q, want %q", sym, c[sym], want)
		}
	}
	if v, ok := c["CONFIG_NET_9P"]; ok {
		t.Errorf("CONFIG_NET_9P (not set) = %q, want it absent", v)
	}
}

func TestReadConfigGzip(t *testing.T) {
	data, err := os.ReadFile("testdata/config-sub-sched")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	zw.Close()
	p := write(t, t.TempDir(), "config.gz", buf.Bytes())
	c, err := kernel.ReadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c["CONFIG_EXT_SUB_SCHED"] != "y" {
		t.Errorf("CONFIG_EXT_SUB_SCHED = %q in the gzipped config", c["CONFIG_EXT_SUB_SCHED"])
	}
}

func TestReadConfigNotAConfig(t *testing.T) {
	_, err := kernel.ReadConfig("testdata/not-a-kernel.txt")
	if err == nil || !strings.Contains(err.Error(), "testdata/not-a-kernel.txt: no CONFIG_ lines") {
		t.Errorf("ReadConfig(text) error = %v", err)
	}
	_, err = kernel.ReadConfig("testdata/missing")
	if err == nil || !strings.Contains(err.Error(), "testdata/missing") {
		t.Errorf("ReadConfig(missing) error = %v", err)
	}
}

func TestMissing(t *testing.T) {
	c, err := kernel.ReadConfig("testdata/config-no-sched-ext")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Missing("CONFIG_CGROUPS", "SCHED_CLASS_EXT", "CONFIG_EXT_SUB_SCHED", "BPF_JIT", "VIRTIO_BLK")
	want := []string{"CONFIG_SCHED_CLASS_EXT", "CONFIG_EXT_SUB_SCHED", "CONFIG_VIRTIO_BLK"}
	if !slices.Equal(got, want) {
		t.Errorf("Missing = %q, want %q", got, want)
	}
	if got := c.Missing(); got != nil {
		t.Errorf("Missing() = %q, want nil", got)
	}
}

func TestCheckConfig(t *testing.T) {
	if err := (&kernel.Image{}).CheckConfig(); err != nil {
		t.Errorf("CheckConfig without a config = %v, want nil", err)
	}
	if err := (&kernel.Image{Config: "testdata/config-sub-sched"}).CheckConfig(); err != nil {
		t.Errorf("CheckConfig(config-sub-sched) = %v, want nil", err)
	}

	err := (&kernel.Image{Config: "testdata/config-no-sched-ext"}).CheckConfig()
	want := "kernel config testdata/config-no-sched-ext lacks CONFIG_SCHED_CLASS_EXT=y, CONFIG_EXT_SUB_SCHED=y: " +
		"scxcheck needs a kernel with sched_ext sub-schedulers"
	if err == nil || err.Error() != want {
		t.Errorf("CheckConfig error %q, want %q", err, want)
	}
	if !errors.Is(err, kernel.ErrConfig) {
		t.Errorf("error %v does not wrap ErrConfig", err)
	}

	err = (&kernel.Image{Config: filepath.Join(t.TempDir(), "config")}).CheckConfig()
	if err == nil || errors.Is(err, kernel.ErrConfig) {
		t.Errorf("CheckConfig of a missing config = %v, want an error not wrapping ErrConfig", err)
	}
}
