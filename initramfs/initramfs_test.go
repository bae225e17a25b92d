package initramfs

import (
	"bytes"
	"strconv"
	"testing"
)

// readNewc parses a newc archive back into name → (mode, data).
func readNewc(t *testing.T, b []byte) map[string][2]any {
	t.Helper()
	out := map[string][2]any{}
	off := 0
	field := func(i int) int {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("bad header field at %d: %v", off, err)
		}
		return int(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at %d: %q", off, b[off:off+6])
		}
		mode, size, namesize := field(1), field(6), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		data := b[off : off+size]
		off = align(off + size)
		if name == "TRAILER!!!" {
			return out
		}
		out[name] = [2]any{mode, string(data)}
	}
}

func TestArchiveRoundTrip(t *testing.T) {
	var a Archive
	a.Add(File{Name: "/init", Mode: 0o755, Data: []byte("#!agent")})
	a.Add(File{Name: "/etc/scx/knob", Mode: 0o644, Data: []byte("odd length!")})
	var buf bytes.Buffer
	if err := a.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, buf.Bytes())
	want := map[string][2]any{
		"init":         {0o100755, "#!agent"},
		"etc":          {0o40755, ""},
		"etc/scx":      {0o40755, ""},
		"etc/scx/knob": {0o100644, "odd length!"},
	}
	if len(got) != len(want) {
		t.Fatalf("archive has %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %v, want %v", name, got[name], w)
		}
	}
}

func TestArchiveMissingSource(t *testing.T) {
	var a Archive
	a.Add(File{Name: "/init", Source: "/nonexistent/agent"})
	err := a.Write(&bytes.Buffer{})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("add init to initramfs")) {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}
