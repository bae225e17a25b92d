package debian

import (
	"strings"
	"testing"
)

func TestMirrorFromAptDir(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want string
	}{
		{"testdata/apt-deb822", "https://mirror.example.org/debian"},
		{"testdata/apt-oneline", "http://ftp.de.debian.org/debian"},
		{"testdata/apt-docker-first", "http://deb.debian.org/debian"},
	} {
		got, err := mirrorFromAptDir(tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("mirrorFromAptDir(%s) = %q, %v; want %q", tc.dir, got, err, tc.want)
		}
	}
	for _, dir := range []string{"testdata/apt-none", "testdata/no-such-dir"} {
		got, err := mirrorFromAptDir(dir)
		if err == nil || !strings.Contains(err.Error(), "no http(s) Debian archive") {
			t.Errorf("mirrorFromAptDir(%s) = %q, %v; want a no-archive error", dir, got, err)
		}
	}
}

func TestMirrorFromSystem(t *testing.T) {
	m, err := MirrorFromSystem()
	t.Logf("this machine: %q, %v", m, err)
}

func TestOneLineSources(t *testing.T) {
	got := oneLineSources("deb [ arch=amd64 signed-by=/k ] http://a/debian sid main contrib # comment\n" +
		"deb-src http://b/debian sid main\n# deb http://c/debian sid main\ndeb broken\n")
	if len(got) != 2 || got[0].uri != "http://a/debian" || strings.Join(got[0].components, " ") != "main contrib" ||
		got[1].uri != "http://b/debian" {
		t.Errorf("oneLineSources = %+v", got)
	}
}
