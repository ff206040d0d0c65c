package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigSources: flags win over WSO2IMG_* variables, which win over wso2img.yaml;
// a file that is merely called "wso2img" (the binary, say) is not a config file.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	isJSON := func(r result) bool { return strings.HasPrefix(strings.TrimSpace(r.stdout), "[") }

	if err := os.WriteFile(filepath.Join(dir, "wso2img"), []byte("\x7fELF\x02\x01\x01\x00binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "profiles", "list"); r.code != 0 || isJSON(r) {
		t.Fatalf("with a binary called wso2img in the folder: exit %d\n%s", r.code, r.stderr)
	}

	if err := os.WriteFile(filepath.Join(dir, "wso2img.yaml"), []byte("json: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "profiles", "list"); r.code != 0 || !isJSON(r) {
		t.Errorf("wso2img.yaml json: true was not applied: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("WSO2IMG_JSON", "false")
	if r := runCLI(t, "profiles", "list"); isJSON(r) {
		t.Errorf("WSO2IMG_JSON=false did not win over the config file")
	}
	if r := runCLI(t, "profiles", "list", "--json"); !isJSON(r) {
		t.Errorf("--json did not win over WSO2IMG_JSON")
	}

	// A config file given by name must exist and parse.
	if r := runCLI(t, "--config", filepath.Join(dir, "missing.yaml"), "profiles", "list"); r.code != 2 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("a missing --config: exit %d\n%s", r.code, r.stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("json: [\n"), 0o644)
	if r := runCLI(t, "--config", bad, "profiles", "list"); r.code != 2 {
		t.Errorf("a broken --config: exit %d\n%s", r.code, r.stderr)
	}
	// A value of the wrong type names the flag.
	os.WriteFile(bad, []byte("json: maybe\n"), 0o644)
	t.Setenv("WSO2IMG_JSON", "")
	if r := runCLI(t, "--config", bad, "profiles", "list"); r.code != 2 || !strings.Contains(r.stderr, "json") {
		t.Errorf("json: maybe: exit %d\n%s", r.code, r.stderr)
	}
}

func TestExitCodes(t *testing.T) {
	if r := runCLI(t, "plan"); r.code != 2 {
		t.Errorf("plan without a profile: exit %d", r.code)
	}
	if r := runCLI(t, "build", "--bogus", "x"); r.code != 2 || !strings.Contains(r.stderr, "unknown flag") {
		t.Errorf("an unknown flag: exit %d\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, "profiles", "show", "nope"); r.code != 2 {
		t.Errorf("an unknown stock profile: exit %d", r.code)
	}
	if r := runCLI(t, "build", "--output", "zip:x", "wso2is-7.1.0"); r.code != 2 {
		t.Errorf("a bad --output: exit %d\n%s", r.code, r.stderr)
	}
	help := runCLI(t, "--help")
	for _, want := range []string{"Exit codes:", "3  an input or the base image failed verification", "COSIGN_PASSWORD", "BUILDKIT_HOST"} {
		if !strings.Contains(help.stdout, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
