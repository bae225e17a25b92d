// Package ci holds the CI entry points (gate) and example CI jobs
// (examples/); this test keeps them working.
package ci

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestGateHelp(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "gate").CombinedOutput(); err != nil {
		t.Fatalf("bash -n gate: %v\n%s", err, out)
	}
	out, err := exec.Command("./gate", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("gate --help: %v\n%s", err, out)
	}
	for _, want := range []string{"--out DIR", "--repeat N", "--tree", "junit.xml", "exits 0 when every spec passed, 1 on a regression, 3"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("gate --help lacks %q:\n%s", want, out)
		}
	}
}

// fakeScxcheck is a stand-in for bin/scxcheck: it records its arguments,
// writes the JUnit report unless told not to, and exits with a given code.
const fakeScxcheck = `#!/bin/sh
[ "$1" = run ] && printf '%s\n' "$@" > "$FAKE_ARGS"
junit=
while [ $# -gt 0 ]; do [ "$1" = --junit ] && junit=$2; shift; done
[ -n "$FAKE_NO_JUNIT" ] || echo '<testsuites tests="1"></testsuites>' > "$junit"
echo "scxcheck: $FAKE_MSG" >&2
exit $FAKE_EXIT
`

func TestGateExitCodes(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "scxcheck")
	if err := os.WriteFile(fake, []byte(fakeScxcheck), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		exit    int
		noJUnit bool
		want    int
		verdict string
		msg     string
	}{
		{"pass", 0, false, 0, "pass", ""},
		{"regression", 1, false, 1, "regression", ""},
		{"changed lines under-tested", 1, false, 1, "changed lines under-tested",
			"changed-line coverage 50.0% (1 of 2) is below --min-changed-coverage 80%; not executed:"},
		{"bad input (kernel without sched_ext, bad flag) is not a test", 2, true, 3, "not tested", ""},
		{"infrastructure", 3, true, 3, "not tested", ""},
		{"killed", 137, true, 3, "not tested", ""},
		{"infrastructure with a report", 3, false, 3, "not tested", ""},
		{"exit 1 without a report (Ginkgo refused the spec tree)", 1, true, 3, "not tested", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			args := filepath.Join(dir, "args")
			cmd := exec.Command("./gate", "--out", out, "--label-filter=boot", "--tree", "/src/linux", "--patch", "a b.patch")
			msg := "the reason"
			if c.msg != "" {
				msg = c.msg
			}
			cmd.Env = append(os.Environ(), "SCXCHECK="+fake, "FAKE_ARGS="+args, "FAKE_EXIT="+strconv.Itoa(c.exit), "FAKE_MSG="+msg)
			if c.noJUnit {
				cmd.Env = append(cmd.Env, "FAKE_NO_JUNIT=1")
			}
			stderr, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.want || !strings.Contains(string(stderr), "ci/gate: "+c.verdict) {
				t.Errorf("scxcheck exit %d: gate exited %d, want %d, saying %q:\n%s", c.exit, code, c.want, c.verdict, stderr)
			}
			got, _ := os.ReadFile(args)
			want := strings.Join([]string{"run", "--junit", out + "/junit.xml", "--artifacts", out + "/artifacts",
				"--report", out + "/report", "--label-filter=boot", "--tree", "/src/linux", "--patch", "a b.patch"}, "\n") + "\n"
			if string(got) != want {
				t.Errorf("scxcheck got arguments\n%s\nwant\n%s", got, want)
			}
			junit, err := os.ReadFile(filepath.Join(out, "junit.xml"))
			if err != nil {
				t.Fatalf("no JUnit report: %v", err)
			}
			var v struct{}
			if err := xml.Unmarshal(junit, &v); err != nil {
				t.Errorf("JUnit report is not XML: %v\n%s", err, junit)
			}
			if c.noJUnit && !strings.Contains(string(junit), "the reason") {
				t.Errorf("the gate's own JUnit report does not say why:\n%s", junit)
			}
			// The stand-in writes no report: the gate writes one.
			if page, err := os.ReadFile(filepath.Join(out, "report", "index.html")); err != nil || !strings.Contains(string(page), "not tested") {
				t.Errorf("no report page saying why: %v\n%s", err, page)
			}
		})
	}
}

// gateCalls returns the ci/gate command lines in a shell script text.
var gateCall = regexp.MustCompile(`(?m)(\S*ci/gate)\s+(.*)$`)

// checkGateCall checks a ci/gate invocation: it names an --out directory,
// whose junit.xml and artifacts the job must publish.
func checkGateCall(t *testing.T, job, script string) (outDir string) {
	t.Helper()
	m := gateCall.FindStringSubmatch(script)
	if m == nil {
		t.Errorf("%s: no ci/gate call in:\n%s", job, script)
		return ""
	}
	out := regexp.MustCompile(`--out[ =]"?\$\{?(\w+)\}?"?`).FindStringSubmatch(m[2])
	if out == nil {
		t.Errorf("%s: ci/gate without --out: %s", job, m[0])
		return ""
	}
	return out[1]
}

func TestGitHubActionsExample(t *testing.T) {
	var wf struct {
		On   map[string]any    `yaml:"on"`
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			RunsOn    string `yaml:"runs-on"`
			Container string `yaml:"container"`
			Timeout   int    `yaml:"timeout-minutes"`
			Steps     []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				Run  string            `yaml:"run"`
				If   string            `yaml:"if"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, "examples/github-actions.yml", &wf)
	if len(wf.On) == 0 || len(wf.Jobs) != 2 {
		t.Fatalf("want triggers and two jobs, got %d triggers, %d jobs", len(wf.On), len(wf.Jobs))
	}
	caches := map[string]bool{}
	for name, job := range wf.Jobs {
		if job.RunsOn == "" || !strings.HasPrefix(job.Container, "debian:") || job.Timeout == 0 {
			t.Errorf("%s: want runs-on, a Debian container and a timeout", name)
		}
		var gate, buildCache, prune bool
		var uploaded string
		for _, s := range job.Steps {
			if strings.Contains(s.Run, "kernel prune") && s.If == "always()" {
				prune = true
			}
			if s.Uses == "" && s.Run == "" {
				t.Errorf("%s: step %q neither uses nor runs anything", name, s.Name)
			}
			if strings.Contains(s.Run, "ci/gate") {
				gate = true
				if v := checkGateCall(t, name, s.Run); v != "" && wf.Env[v] == "" {
					t.Errorf("%s: --out uses $%s, which the workflow does not set", name, v)
				} else if v != "" {
					uploaded = wf.Env[v]
				}
			}
			switch {
			case strings.HasPrefix(s.Uses, "actions/cache@"):
				if s.With["path"] == "" || s.With["key"] == "" {
					t.Errorf("%s: cache step without path or key", name)
				}
				switch {
				case strings.Contains(s.With["path"], "scxcheck/kernels") && strings.Contains(s.With["key"], "KERNEL_RELEASE"):
					caches["kernel"] = true
				case strings.Contains(s.With["path"], "scxcheck/build") && strings.Contains(s.With["key"], "kernel/kconfig/fragments/"):
					caches["build"] = true
					buildCache = true
				}
			case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
				if s.If != "always()" {
					t.Errorf("%s: artifacts must be uploaded on failure too (if: always())", name)
				}
				if uploaded == "" || strings.TrimSuffix(s.With["path"], "/") != uploaded {
					t.Errorf("%s: uploads %q, the gate writes to %q", name, s.With["path"], uploaded)
				}
			case strings.HasPrefix(s.Uses, "mikepenz/action-junit-report@"):
				if s.With["report_paths"] != uploaded+"/junit.xml" {
					t.Errorf("%s: JUnit from %q, the gate writes %s/junit.xml", name, s.With["report_paths"], uploaded)
				}
			}
		}
		if !gate {
			t.Errorf("%s: no step runs ci/gate", name)
		}
		if buildCache && !prune {
			t.Errorf("%s: saves the kernel build cache but never trims it (a step running 'kernel prune' with if: always())", name)
		}
	}
	if !caches["kernel"] || !caches["build"] {
		t.Errorf("want a kernel cache keyed on KERNEL_RELEASE and a build cache keyed on kernel/kconfig/fragments/, got %v", caches)
	}
}

func TestGitLabCIExample(t *testing.T) {
	var doc map[string]yaml.Node
	readYAML(t, "examples/gitlab-ci.yml", &doc)
	type job struct {
		Extends string   `yaml:"extends"`
		Image   string   `yaml:"image"`
		Script  []string `yaml:"script"`
		After   []string `yaml:"after_script"`
		Retry   struct {
			Max       int   `yaml:"max"`
			ExitCodes []int `yaml:"exit_codes"`
		} `yaml:"retry"`
		Cache []struct {
			Key   any      `yaml:"key"`
			Paths []string `yaml:"paths"`
		} `yaml:"cache"`
		Artifacts struct {
			When    string   `yaml:"when"`
			Paths   []string `yaml:"paths"`
			Reports struct {
				JUnit string `yaml:"junit"`
			} `yaml:"reports"`
		} `yaml:"artifacts"`
	}
	var vars map[string]string
	if n, ok := doc["variables"]; !ok || n.Decode(&vars) != nil {
		t.Fatal("no variables")
	}
	jobs := map[string]job{}
	for name, n := range doc {
		if name == "variables" {
			continue
		}
		var j job
		if err := n.Decode(&j); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		jobs[name] = j
	}
	tmpl, ok := jobs[".scxcheck"]
	if !ok {
		t.Fatal("no .scxcheck template")
	}
	if !strings.HasPrefix(tmpl.Image, "debian:") || tmpl.Artifacts.When != "always" || tmpl.Artifacts.Reports.JUnit == "" {
		t.Errorf(".scxcheck: want a Debian image, artifacts when: always and a JUnit report: %+v", tmpl)
	}
	if len(tmpl.Retry.ExitCodes) != 1 || tmpl.Retry.ExitCodes[0] != 3 {
		t.Errorf(".scxcheck: retry only infrastructure failures (exit 3), got %v", tmpl.Retry.ExitCodes)
	}
	caches := map[string]bool{}
	n := 0
	for name, j := range jobs {
		if name == ".scxcheck" {
			continue
		}
		n++
		if j.Extends != ".scxcheck" {
			t.Errorf("%s: extends %q", name, j.Extends)
		}
		v := checkGateCall(t, name, strings.Join(j.Script, "\n"))
		if out := vars[v]; v == "" || tmpl.Artifacts.Reports.JUnit != out+"/junit.xml" || !contains(tmpl.Artifacts.Paths, out+"/") {
			t.Errorf("%s: the gate writes to $%s=%q; artifacts are %v, JUnit %q", name, v, out, tmpl.Artifacts.Paths, tmpl.Artifacts.Reports.JUnit)
		}
		for _, c := range j.Cache {
			key := strings.ToLower(strings.TrimSpace(strings.ReplaceAll(yamlString(c.Key), "\n", " ")))
			for _, p := range c.Paths {
				if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "~") {
					t.Errorf("%s: GitLab caches only paths in the project directory, not %s", name, p)
				}
				switch {
				case strings.Contains(p, "scxcheck/kernels") && strings.Contains(key, "kernel_release"):
					caches["kernel"] = true
				case strings.Contains(p, "scxcheck/build"):
					caches["build"] = true
					if !strings.Contains(strings.Join(j.After, "\n"), "kernel prune") {
						t.Errorf("%s: saves the kernel build cache but never trims it (after_script: kernel prune)", name)
					}
				}
			}
		}
	}
	if n != 2 {
		t.Errorf("want two jobs, got %d", n)
	}
	if !caches["kernel"] || !caches["build"] {
		t.Errorf("want a kernel cache keyed on KERNEL_RELEASE and a build cache, got %v", caches)
	}
	if !strings.HasPrefix(vars["XDG_CACHE_HOME"], "$CI_PROJECT_DIR") {
		t.Errorf("XDG_CACHE_HOME must be inside the project directory for the caches to work, is %q", vars["XDG_CACHE_HOME"])
	}
}

// The README points at the gate and the examples; docs/ci.md describes them.
func TestREADMEDescribesExamples(t *testing.T) {
	for file, wants := range map[string][]string{
		"../README.md":  {"ci/gate", "ci/examples/", "docs/ci.md"},
		"../docs/ci.md": {"ci/gate", "ci/examples/github-actions.yml", "ci/examples/gitlab-ci.yml"},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s does not mention %s", file, want)
			}
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func yamlString(v any) string {
	b, _ := yaml.Marshal(v)
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestExamplesGateCoverage checks that each example shows the coverage
// gate: a ci/gate call with --coverage, the change's base and a threshold.
func TestExamplesGateCoverage(t *testing.T) {
	for _, name := range []string{"examples/github-actions.yml", "examples/gitlab-ci.yml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, m := range gateCall.FindAllStringSubmatch(string(b), -1) {
			if strings.Contains(m[2], "--coverage ") && strings.Contains(m[2], "--coverage-base ") && strings.Contains(m[2], "--min-changed-coverage ") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no ci/gate call with --coverage, --coverage-base and --min-changed-coverage", name)
		}
	}
}
