package debian

import (
	"errors"
	"slices"
	"testing"
)

func TestNormalizeRelease(t *testing.T) {
	for in, want := range map[string]string{
		"7.2.13+deb14-cloud-amd64":              "7.2.13+deb14-cloud-amd64",
		"7.2.13+deb14":                          "7.2.13+deb14-cloud-amd64",
		" 7.3.4+deb13 ":                         "7.3.4+deb13-cloud-amd64",
		"linux-image-7.2.13+deb14-cloud-amd64":  "7.2.13+deb14-cloud-amd64",
		"linux-binary-7.2.13+deb14-cloud-amd64": "7.2.13+deb14-cloud-amd64",
		"6.1.0-18":                              "6.1.0-18-cloud-amd64",
	} {
		got, err := normalizeRelease(in)
		if err != nil || got != want {
			t.Errorf("normalizeRelease(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "latest", "7", "7.2.13+deb14-amd64", "7.2.13+deb14-rt-amd64", "7.2.13 deb14", "../7.2"} {
		if got, err := normalizeRelease(in); !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("normalizeRelease(%q) = %q, %v; want ErrUnknownVersion", in, got, err)
		}
	}
}

func TestCompareRelease(t *testing.T) {
	rels := []string{
		"7.2.13+deb14-cloud-amd64",
		"7.10.1+deb14-cloud-amd64",
		"6.19.14+deb13-cloud-amd64",
		"7.3.4+deb13-cloud-amd64",
		"7.2.9+deb13-cloud-amd64",
		"7.2.13+deb13-cloud-amd64",
	}
	slices.SortFunc(rels, compareRelease)
	want := []string{
		"6.19.14+deb13-cloud-amd64",
		"7.2.9+deb13-cloud-amd64",
		"7.2.13+deb13-cloud-amd64",
		"7.2.13+deb14-cloud-amd64",
		"7.3.4+deb13-cloud-amd64",
		"7.10.1+deb14-cloud-amd64",
	}
	if !slices.Equal(rels, want) {
		t.Errorf("sorted %q, want %q", rels, want)
	}
}

func TestHasSubScheds(t *testing.T) {
	for rel, want := range map[string]bool{
		"7.1.3+deb13-cloud-amd64":   true,
		"7.3.4+deb13-cloud-amd64":   true,
		"7.10.1+deb14-cloud-amd64":  true,
		"8.0.1+deb14-cloud-amd64":   true,
		"7.0.9+deb13-cloud-amd64":   false,
		"6.12.48+deb13-cloud-amd64": false,
		"nonsense":                  false,
	} {
		if got := hasSubScheds(rel); got != want {
			t.Errorf("hasSubScheds(%s) = %v, want %v", rel, got, want)
		}
	}
	for v, want := range map[string]bool{"7.3.4+deb13-cloud-amd64": true, "7.3.4+deb13": true,
		"/boot/vmlinuz-7.3.4+deb13-cloud-amd64": false, "vmlinux": false, "default": false} {
		if got := IsRelease(v); got != want {
			t.Errorf("IsRelease(%s) = %v, want %v", v, got, want)
		}
	}
}
