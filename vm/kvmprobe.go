package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// KVMVerdictTTL is how long a failed KVM probe is remembered (Config.
// KVMVerdicts): a host whose KVM fails would otherwise pay the probe again
// on every boot of every run, --repeat, soak, bisect step and mutant.
const KVMVerdictTTL = 24 * time.Hour

// kvmVerdict is a failed probe as remembered in the verdicts file.
type kvmVerdict struct {
	Key    string    `json:"key"`
	Failed time.Time `json:"failed"`
	Reason string    `json:"reason"`
}

// probeKey identifies what a probe's outcome depends on: the host, the QEMU
// binary and the kernel (each by path, size and modification time).
func probeKey(qemu, kernel string) string {
	h := sha256.New()
	host, _ := os.Hostname()
	fmt.Fprintln(h, host)
	for _, p := range []string{qemu, kernel} {
		fmt.Fprintln(h, p)
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintln(h, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// rememberedKVMFailure returns the reason of a failed probe with this key
// younger than KVMVerdictTTL in the verdicts file, if any.
func rememberedKVMFailure(file, key string, now time.Time) (kvmVerdict, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return kvmVerdict{}, false
	}
	var vs []kvmVerdict
	if json.Unmarshal(b, &vs) != nil {
		return kvmVerdict{}, false
	}
	for _, v := range vs {
		if v.Key == key && now.Sub(v.Failed) < KVMVerdictTTL && now.After(v.Failed) {
			return v, true
		}
	}
	return kvmVerdict{}, false
}

// rememberKVM records (failed) or forgets (!failed) the probe of key in the
// verdicts file, dropping expired entries. Errors are not fatal: the next
// boot probes again.
func rememberKVM(file, key string, failed bool, reason string, now time.Time) error {
	var vs []kvmVerdict
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &vs)
	}
	keep := vs[:0]
	for _, v := range vs {
		if v.Key != key && now.Sub(v.Failed) < KVMVerdictTTL {
			keep = append(keep, v)
		}
	}
	if failed {
		keep = append(keep, kvmVerdict{Key: key, Failed: now, Reason: reason})
	}
	b, err := json.MarshalIndent(keep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
