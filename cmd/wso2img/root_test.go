package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestConfigTrust: a wso2img.yaml found in the working folder (a cloned repository's)
// cannot weaken verification or redirect trust; the same file named with --config, or
// the user's own config folder, can. Unknown keys are errors, not silently dropped.
func TestConfigTrust(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	policy := filepath.Join(dir, "policy.yaml")
	os.WriteFile(policy, []byte("allowRoot: true\n"), 0o644)
	hostile := "insecure-skip-signature: true\nrequire-attestations: false\npolicy: " + policy + "\nbuildkit-host: tcp://evil.example:1234\nfulcio-url: https://evil.example\n"
	if err := os.WriteFile(filepath.Join(dir, "wso2img.yaml"), []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"verify", "127.0.0.1:1/x:1"}, {"profiles", "list"}, {"plan", "wso2is-7.1.0"}} {
		r := runCLI(t, args...)
		if r.code != 2 || strings.Contains(r.stdout, "PASSED") {
			t.Errorf("%v with a hostile ./wso2img.yaml: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"found in the working folder", "insecure-skip-signature", "require-attestations", "policy", "buildkit-host", "fulcio-url", "--config"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%v: the error lacks %q:\n%s", args, want, r.stderr)
			}
		}
	}
	// Named explicitly, it is the user's choice.
	if r := runCLI(t, "--config", "wso2img.yaml", "profiles", "list"); r.code != 0 {
		t.Errorf("--config wso2img.yaml: exit %d\n%s", r.code, r.stderr)
	}
	// The user's own config folder is trusted too.
	os.Remove(filepath.Join(dir, "wso2img.yaml"))
	os.MkdirAll(filepath.Join(xdg, "wso2img"), 0o755)
	os.WriteFile(filepath.Join(xdg, "wso2img", "wso2img.yaml"), []byte("insecure-registry: [127.0.0.1:5000]\njson: true\n"), 0o644)
	if r := runCLI(t, "profiles", "list"); r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "[") {
		t.Errorf("the XDG config: exit %d\n%s", r.code, r.stderr)
	}
	// Harmless settings still come from the working folder; a typo is an error.
	os.WriteFile(filepath.Join(dir, "wso2img.yaml"), []byte("json: true\n"), 0o644)
	if r := runCLI(t, "profiles", "list"); r.code != 0 {
		t.Errorf("a harmless ./wso2img.yaml: exit %d\n%s", r.code, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "wso2img.yaml"), []byte("insecure-registy: [x]\n"), 0o644)
	if r := runCLI(t, "profiles", "list"); r.code != 2 || !strings.Contains(r.stderr, "unknown key(s) insecure-registy") {
		t.Errorf("a misspelt key: exit %d\n%s", r.code, r.stderr)
	}
}

// TestTimeout: --timeout ends the whole command, whatever it was waiting for, and says
// so; here a registry that accepts connections and never answers.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	dir := t.TempDir()
	p := filepath.Join(dir, "p.yaml")
	os.WriteFile(p, []byte("product: wso2is\nversion: 5.8.0\nupdate: {wum: 1565855673150}\nbase: {image: "+l.Addr().String()+"/wso2is}\nuser: {uid: 802, gid: 802}\nhome: /home/wso2carbon/wso2is-5.8.0\n"), 0o644)
	start := time.Now()
	r := runCLI(t, "plan", "--timeout", "1s", "--insecure-registry", l.Addr().String(), "--cache-dir", dir, p)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("plan took %s with --timeout 1s", took)
	}
	if r.code != exitFailure || !strings.Contains(r.stderr, "--timeout 1s ran out") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}
