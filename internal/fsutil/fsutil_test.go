package fsutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHashFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if h != (Hash{Size: 3, SHA256: abc}) {
		t.Errorf("HashFile = %+v", h)
	}
	if HashBytes([]byte("abc")) != abc || HashString("abc") != abc {
		t.Error("HashBytes and HashString disagree with HashFile")
	}
	if _, err := HashFile(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("HashFile of a missing file: %v", err)
	}
}

func TestCopyFileKeepsModeAndTimeAndReplaces(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("new"), 0o750); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte("old content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CopyFile(src, dst); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(dst)
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "new" || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(old) {
		t.Errorf("copy: %q, mode %v, time %v", data, fi.Mode(), fi.ModTime())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("the copy left a temporary file: %v", ents)
	}
	if err := CopyFile(filepath.Join(dir, "none"), dst); !os.IsNotExist(err) {
		t.Errorf("CopyFile of a missing file: %v", err)
	}
}

func TestCopyNew(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	os.WriteFile(src, []byte("x"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(src, old, old)
	if err := CopyNew(src, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(dst)
	if fi.Mode().Perm() != 0o755 || fi.ModTime().Before(old.Add(time.Minute)) {
		t.Errorf("mode %v, time %v: want 0755 and now", fi.Mode(), fi.ModTime())
	}
	if err := CopyNew(src, dst, 0o644); !os.IsExist(err) {
		t.Errorf("CopyNew onto an existing file: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	for _, s := range []string{"first", "second"} {
		if err := WriteFileAtomic(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(p); string(data) != s {
			t.Errorf("content %q, want %q", data, s)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left temporary files: %v", ents)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "no", "such"), nil, 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}
