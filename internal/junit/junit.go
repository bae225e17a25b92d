// Package junit post-processes the JUnit XML reports Ginkgo writes for
// scxcheck: it adds scxcheck's own suite properties (the kernel tested, its
// sub-scheduler API generation, whether it carries the test-only patch) and
// merges the reports of a kernel matrix into one file, a test suite per
// kernel.
package junit

import (
	"encoding/xml"
	"fmt"
	"os"

	"github.com/onsi/ginkgo/v2/reporters"

	"github.com/scxcheck/scxcheck/internal/fsutil"
)

// Property is one suite property, e.g. {"scxcheck.kernel.release", "7.3.4+deb13-cloud-amd64"}.
type Property struct {
	Name, Value string
}

func read(path string) (reporters.JUnitTestSuites, error) {
	var s reporters.JUnitTestSuites
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read JUnit report: %w", err)
	}
	if err := xml.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse JUnit report %s: %w", path, err)
	}
	return s, nil
}

func write(path string, s reporters.JUnitTestSuites) error {
	b, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write JUnit report %s: %w", path, err)
	}
	if err := fsutil.WriteFileAtomic(path, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return fmt.Errorf("write JUnit report %s: %w", path, err)
	}
	return nil
}

// AddProperties adds props to every test suite of the report at path,
// replacing properties of the same names.
func AddProperties(path string, props []Property) error {
	s, err := read(path)
	if err != nil {
		return err
	}
	for i := range s.TestSuites {
		setProperties(&s.TestSuites[i], props)
	}
	return write(path, s)
}

func setProperties(ts *reporters.JUnitTestSuite, props []Property) {
	for _, p := range props {
		found := false
		for j := range ts.Properties.Properties {
			if ts.Properties.Properties[j].Name == p.Name {
				ts.Properties.Properties[j].Value = p.Value
				found = true
			}
		}
		if !found {
			ts.Properties.Properties = append(ts.Properties.Properties, reporters.JUnitProperty{Name: p.Name, Value: p.Value})
		}
	}
}

// Part is one report of a matrix: its file and the name its test suites
// get in the merged report (e.g. "scxcheck on 7.3.4+deb13-cloud-amd64").
type Part struct {
	Path, Suite string
}

// Merge writes one report to dst holding the test suites of every part,
// renamed, with the totals summed. A part whose file is missing is an error.
func Merge(dst string, parts []Part) error {
	var out reporters.JUnitTestSuites
	for _, p := range parts {
		s, err := read(p.Path)
		if err != nil {
			return err
		}
		for _, ts := range s.TestSuites {
			ts.Name = p.Suite
			out.TestSuites = append(out.TestSuites, ts)
		}
		out.Tests += s.Tests
		out.Disabled += s.Disabled
		out.Errors += s.Errors
		out.Failures += s.Failures
		out.Time += s.Time
	}
	return write(dst, out)
}
