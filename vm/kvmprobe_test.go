package vm

import (
	"path/filepath"
	"testing"
	"time"
)

func TestKVMVerdicts(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kvm.json")
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	if _, ok := rememberedKVMFailure(file, "k1", now); ok {
		t.Fatal("a verdict from a missing file")
	}
	if err := rememberKVM(file, "k1", true, "KVM internal error", now); err != nil {
		t.Fatal(err)
	}
	if err := rememberKVM(file, "k2", true, "other", now); err != nil {
		t.Fatal(err)
	}
	v, ok := rememberedKVMFailure(file, "k1", now.Add(time.Hour))
	if !ok || v.Reason != "KVM internal error" {
		t.Errorf("remembered %+v, %v", v, ok)
	}
	if _, ok := rememberedKVMFailure(file, "k1", now.Add(KVMVerdictTTL+time.Second)); ok {
		t.Error("an expired verdict is still used")
	}
	if _, ok := rememberedKVMFailure(file, "k3", now); ok {
		t.Error("a verdict for another host, QEMU or kernel is used")
	}
	// A probe that works forgets the failure.
	if err := rememberKVM(file, "k1", false, "", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := rememberedKVMFailure(file, "k1", now.Add(2*time.Minute)); ok {
		t.Error("a failure forgotten by a working probe is still used")
	}
	if _, ok := rememberedKVMFailure(file, "k2", now.Add(2*time.Minute)); !ok {
		t.Error("forgetting one key lost another")
	}
}

func TestProbeKeyDependsOnKernel(t *testing.T) {
	if probeKey("/usr/bin/qemu", "/k/a") == probeKey("/usr/bin/qemu", "/k/b") {
		t.Error("the key does not depend on the kernel")
	}
}
