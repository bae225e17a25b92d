package debian

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrUnknownVersion is wrapped by errors about a kernel version that is
// malformed or that Debian does not have.
var ErrUnknownVersion = errors.New("no such Debian cloud kernel")

// flavour is the Debian kernel flavour fetched: small, with virtio built in.
const flavour = "cloud-amd64"

var releaseRE = regexp.MustCompile(`^[0-9]+\.[0-9]+[0-9A-Za-z.+~-]*$`)

// normalizeRelease turns what a user may pass as a version into a Debian
// kernel release: "7.2.13+deb14" and "linux-image-7.2.13+deb14-cloud-amd64"
// both become "7.2.13+deb14-cloud-amd64".
func normalizeRelease(v string) (string, error) {
	r := strings.TrimSpace(v)
	for _, prefix := range []string{"linux-image-", "linux-binary-", "linux-base-"} {
		r = strings.TrimPrefix(r, prefix)
	}
	if !releaseRE.MatchString(r) {
		return "", fmt.Errorf("version %q is not a kernel release like 7.2.13+deb14-cloud-amd64: %w", v, ErrUnknownVersion)
	}
	switch {
	case strings.HasSuffix(r, "-"+flavour):
		return r, nil
	case strings.HasSuffix(r, "-amd64"):
		return "", fmt.Errorf("version %q is not a %s kernel: %w", v, flavour, ErrUnknownVersion)
	}
	return r + "-" + flavour, nil
}

// compareRelease orders kernel releases by their numbers: 7.10.1 after
// 7.9.3, 7.3.4+deb13 after 7.2.13+deb14. It returns -1, 0 or 1.
func compareRelease(a, b string) int {
	ta, tb := releaseTokens(a), releaseTokens(b)
	for i := 0; i < len(ta) && i < len(tb); i++ {
		x, y := ta[i], tb[i]
		nx, errx := strconv.ParseUint(x, 10, 64)
		ny, erry := strconv.ParseUint(y, 10, 64)
		switch {
		case errx == nil && erry == nil:
			if nx != ny {
				if nx < ny {
					return -1
				}
				return 1
			}
		case x != y:
			return strings.Compare(x, y)
		}
	}
	switch {
	case len(ta) < len(tb):
		return -1
	case len(ta) > len(tb):
		return 1
	}
	return 0
}

// releaseTokens splits a release into runs of digits and runs of others.
func releaseTokens(s string) []string {
	var tokens []string
	for len(s) > 0 {
		digit := s[0] >= '0' && s[0] <= '9'
		i := 1
		for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
			i++
		}
		tokens = append(tokens, s[:i])
		s = s[i:]
	}
	return tokens
}

// IsRelease reports whether v names a Debian cloud kernel release (e.g.
// 7.3.4+deb13-cloud-amd64 or 7.3.4+deb13) rather than, say, a file.
func IsRelease(v string) bool {
	_, err := normalizeRelease(v)
	return err == nil && !strings.Contains(v, "/")
}
