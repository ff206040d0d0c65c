package ghactions_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/internal/testenv"
)

const repoRoot = "../.."

// TestWorkflowsLint runs actionlint on the project's workflows and the example for
// users; through the workflows that use the local action (uses: ./), it checks
// action.yml's inputs and outputs too.
func TestWorkflowsLint(t *testing.T) {
	testenv.Need(t, "actionlint", "shellcheck")
	bin, err := testenv.Bin("actionlint")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(repoRoot, ".github/workflows/*.yml"))
	examples, _ := filepath.Glob(filepath.Join(repoRoot, "examples/github/*.yml"))
	if len(files) < 2 || len(examples) < 1 {
		t.Fatalf("workflows %v, examples %v: want ci.yml, rebuild.yml and an example", files, examples)
	}
	var rel []string
	for _, f := range append(files, examples...) {
		rel = append(rel, strings.TrimPrefix(f, repoRoot+"/"))
	}
	cmd := exec.Command(bin, rel...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("actionlint %v: %v\n%s", rel, err, out)
	}
}

// TestActionScripts shellchecks the composite action's run scripts (actionlint does not
// look inside action.yml) and checks that it uses only inputs it declares.
func TestActionScripts(t *testing.T) {
	testenv.Need(t, "shellcheck")
	shellcheck, err := testenv.Bin("shellcheck")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs  map[string]any `yaml:"inputs"`
		Outputs map[string]struct {
			Value string `yaml:"value"`
		} `yaml:"outputs"`
		Runs struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID   string `yaml:"id"`
				Name string `yaml:"name"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" {
		t.Errorf("runs.using = %q", action.Runs.Using)
	}
	for _, m := range regexp.MustCompile(`inputs\.([a-z-]+)`).FindAllStringSubmatch(string(data), -1) {
		if _, ok := action.Inputs[m[1]]; !ok {
			t.Errorf("action.yml uses inputs.%s, which it does not declare", m[1])
		}
	}
	ids := map[string]bool{}
	for i, s := range action.Runs.Steps {
		ids[s.ID] = true
		if s.Run == "" {
			continue
		}
		// Expressions are substituted before the shell sees the script.
		script := regexp.MustCompile(`\$\{\{[^}]*\}\}`).ReplaceAllString(s.Run, "x")
		f := filepath.Join(t.TempDir(), "step.sh")
		if err := os.WriteFile(f, []byte("#!/usr/bin/env bash\nset -e\n"+script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(shellcheck, "-s", "bash", f).CombinedOutput(); err != nil {
			t.Errorf("step %d (%s): shellcheck: %v\n%s", i, s.Name, err, out)
		}
	}
	for name, o := range action.Outputs {
		m := regexp.MustCompile(`steps\.([a-z-]+)\.outputs`).FindStringSubmatch(o.Value)
		if m == nil || !ids[m[1]] {
			t.Errorf("output %s comes from %q, which is no step of the action", name, o.Value)
		}
	}
}

// TestActionBuildStep runs the action's build step with a stand-in wso2img that records
// its arguments: inputs become the right flags, and profile globs expand.
func TestActionBuildStep(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Runs struct {
			Steps []struct {
				ID  string `yaml:"id"`
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	var script string
	for _, s := range action.Runs.Steps {
		if s.ID == "build" {
			script = s.Run
		}
	}
	dir := t.TempDir()
	for _, f := range []string{"wso2/is.yaml", "wso2/am.yaml", "other.yaml"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, nil, 0o644)
	}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "wso2img"), []byte("#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" > \"$ARGV_FILE\"\n"), 0o755)

	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
		code int
	}{
		{"keyless", map[string]string{"PROFILE_PATTERNS": "wso2/*.yaml\nother.yaml", "SIGN": "keyless", "TLOG_UPLOAD": "true", "REGISTRY": "ghcr.io/acme/wso2", "IF_CHANGED": "true", "MIRRORS": "docker.wso2.com=r.acme.com/m\nregistry.wso2.com=r.acme.com/n", "EXTRA_ARGS": "--progress quiet"},
			[]string{"build", "--progress", "plain", "--tlog-upload=true", "--registry", "ghcr.io/acme/wso2", "--if-changed", "--sign=true", "--mirror", "docker.wso2.com=r.acme.com/m", "--mirror", "registry.wso2.com=r.acme.com/n", "--progress", "quiet", "wso2/am.yaml", "wso2/is.yaml", "other.yaml"}, 0},
		{"key", map[string]string{"PROFILE_PATTERNS": "other.yaml", "SIGN": "key", "TLOG_UPLOAD": "false", "IF_CHANGED": "false"},
			[]string{"build", "--progress", "plain", "--tlog-upload=false", "--sign=true", "--key", "env://WSO2IMG_SIGNING_KEY", "other.yaml"}, 0},
		{"no signing", map[string]string{"PROFILE_PATTERNS": "wso2/is.yaml", "SIGN": "false", "TLOG_UPLOAD": "true"},
			[]string{"build", "--progress", "plain", "--tlog-upload=true", "--sign=false", "wso2/is.yaml"}, 0},
		{"bad sign", map[string]string{"PROFILE_PATTERNS": "x", "SIGN": "maybe"}, nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := filepath.Join(t.TempDir(), "argv")
			cmd := exec.Command("bash", "-e", "-c", script)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "ARGV_FILE=" + argv}
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s", code, tc.code, out)
			}
			if tc.want == nil {
				return
			}
			b, _ := os.ReadFile(argv)
			got := strings.Split(strings.TrimSpace(string(b)), "\n")
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("wso2img got\n  %v\nwant\n  %v", got, tc.want)
			}
		})
	}
}
