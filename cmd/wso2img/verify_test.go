package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// TestVerifyCommand runs `wso2img verify` against images signed by the library: exit 0
// and a readable report for a good image, one JSON document with --json, exit 4 for a
// wrong key, an unsigned image or a policy violation, exit 2 for usage mistakes.
func TestVerifyCommand(t *testing.T) {
	reg := needRegistry(t)
	repo := reg.Host + "/t-verify-command"
	ro := registry.Options{Insecure: []string{reg.Host}}
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	ctx := context.Background()

	good := signtest.Push(t, repo+"/good:1", signtest.Image(t, signtest.Config(), signtest.Files()))
	rootCfg := signtest.Config()
	rootCfg.User = "root"
	root := signtest.Push(t, repo+"/root:1", signtest.Image(t, rootCfg, signtest.Files()))
	unsigned := signtest.Push(t, repo+"/unsigned:1", signtest.Image(t, signtest.Config(), signtest.Files(), []signtest.File{{Path: "u", Mode: 0o644}}))
	s, err := sign.New(ctx, sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: ro})
	if err != nil {
		t.Fatal(err)
	}
	subj := &sign.Subject{Profile: "wso2is", Product: "wso2is", Version: "5.8.0", WUM: 1565855673150,
		BaseRef: "docker.wso2.com/wso2is:5.8.0", BaseDigest: signtest.BaseDigest, BuiltAt: time.Now()}
	for _, d := range []fmt.Stringer{good, root} {
		ref, _ := ro.NewDigest(d.String())
		if err := s.SignBuild(ctx, ref, subj); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"verify", "--insecure-registry", reg.Host, "--insecure-ignore-tlog"}

	r := runCLI(t, append(flags, "--key", pub, repo+"/good:1")...)
	if r.code != 0 {
		t.Fatalf("verify exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The transparency log is off (--insecure-ignore-tlog): the verdict says so.
	for _, want := range []string{repo + "/good:1  PASSED WITH CHECKS OFF", "WARNING   not checked: transparency log (--insecure-ignore-tlog)", good.DigestStr(), "PASS    signed by the expected key", "PASS    required attestations are signed", "ADVICE  has a HEALTHCHECK"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, append(flags, "--key", pub, "--json", good.String(), root.String())...)
	var reports []verify.Report
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil || len(reports) != 2 {
		t.Fatalf("--json: %v\n%s", err, r.stdout)
	}
	if r.code != exitPolicy || !reports[0].Passed || reports[1].Passed {
		t.Errorf("exit %d, passed %v %v", r.code, reports[0].Passed, reports[1].Passed)
	}

	for name, args := range map[string][]string{
		"wrong key":     {"--key", otherPub, good.String()},
		"unsigned":      {"--key", pub, unsigned.String()},
		"root user":     {"--key", pub, root.String()},
		"audit only":    {"--insecure-skip-signature", root.String()},
		"no provenance": {"--key", pub, "--policy", writeFile(t, "attestations: [https://example.com/other/v1]\n"), good.String()},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, append(flags, args...)...)
			if r.code != exitPolicy || !strings.Contains(r.stdout, "FAILED") {
				t.Errorf("exit %d, want %d\n%s%s", r.code, exitPolicy, r.stdout, r.stderr)
			}
		})
	}
	for name, args := range map[string][]string{
		"no key or identity":   {good.String()},
		"identity, no issuer":  {"--certificate-identity", "a@b.c", good.String()},
		"key and identity":     {"--key", pub, "--certificate-identity", "a@b.c", "--certificate-oidc-issuer", "https://i", good.String()},
		"missing key file":     {"--key", filepath.Join(t.TempDir(), "nope.pub"), good.String()},
		"unknown policy key":   {"--key", pub, "--policy", writeFile(t, "allowroot: true\n"), good.String()},
		"no image":             {"--key", pub},
		"unknown flag":         {"--kee", pub, good.String()},
		"require-attestations": {"--key", pub, "--require-attestations=maybe", good.String()},
	} {
		t.Run(name, func(t *testing.T) {
			if r := runCLI(t, append(flags, args...)...); r.code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
			}
		})
	}
	if r := runCLI(t, append(flags, "--key", pub, "--require-attestations=false", unsigned.String())...); r.code != exitPolicy {
		t.Errorf("unsigned without attestations required: exit %d", r.code)
	}
	// An audit-only pass never reads as a plain PASSED.
	r = runCLI(t, "verify", "--insecure-registry", reg.Host, "--insecure-skip-signature", "--json", unsigned.String())
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil || len(reports) != 1 || !reports[0].Passed ||
		len(reports[0].ChecksOff) != 1 || !strings.Contains(reports[0].ChecksOff[0], "signature and attestations") {
		t.Errorf("audit only --json: %v %+v", err, reports)
	}
	r = runCLI(t, "verify", "--insecure-registry", reg.Host, "--insecure-skip-signature", unsigned.String())
	if r.code != 0 || !strings.Contains(r.stdout, "PASSED WITH CHECKS OFF") || !strings.Contains(r.stdout, "not checked: signature and attestations") {
		t.Errorf("audit only: exit %d\n%s", r.code, r.stdout)
	}
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignOptions: by default images are signed when a key is given or an identity
// token is at hand (GitHub Actions); --sign=false never signs; --sign without either
// fails before building.
func TestSignOptions(t *testing.T) {
	key, _ := signtest.Keys(t)
	t.Setenv("COSIGN_PASSWORD", signtest.Password)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		args    []string
		actions bool
		want    string // "none", "key", "keyless" or "error"
	}{
		{"nothing", nil, false, "none"},
		{"key", []string{"--key", key}, false, "key"},
		{"key, --sign=false", []string{"--key", key, "--sign=false"}, false, "none"},
		{"GitHub Actions", nil, true, "keyless"},
		{"GitHub Actions, --sign=false", []string{"--sign=false"}, true, "none"},
		{"GitHub Actions and a key", []string{"--key", key}, true, "key"},
		{"--sign without key or token", []string{"--sign"}, false, "error"},
		{"bad key", []string{"--key", filepath.Join(t.TempDir(), "nope.key")}, false, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN"} {
				t.Setenv(v, "")
				os.Unsetenv(v)
			}
			if tc.actions {
				t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://token.actions.example/x?api-version=2.0")
				t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-token")
			}
			var o signOptions
			cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
			o.AddFlags(cmd)
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := o.signer(ctx, registry.Options{}, nil)
			got := "none"
			switch {
			case err != nil:
				got = "error"
			case s != nil && s.Keyless():
				got = "keyless"
			case s != nil:
				got = "key"
			}
			if got != tc.want {
				t.Errorf("%v: %s (%v), want %s", tc.args, got, err, tc.want)
			}
			if tc.want == "error" && tc.name == "bad key" && exitCode(err) != exitUsage {
				t.Errorf("a bad key exits %d", exitCode(err))
			}
		})
	}
	var o signOptions
	o.AddFlags(&cobra.Command{Use: "x"})
	if !o.TlogUpload || o.Sign != "auto" || o.FulcioURL != sign.DefaultFulcioURL {
		t.Errorf("defaults %+v", o)
	}
}

// TestExitCodesVerify: policy and signature failures exit 4, a base that fails
// verification 3, a bad key 2, and the highest wins when errors are joined.
func TestExitCodesVerify(t *testing.T) {
	violation := &verify.ViolationError{Image: "x", Failed: []verify.Check{{ID: "user"}}}
	base := &verify.BaseError{Ref: "b@sha256:1", Reason: "none"}
	for _, tc := range []struct {
		err  error
		want int
	}{
		{violation, exitPolicy},
		{fmt.Errorf("wrapped: %w", violation), exitPolicy},
		{base, exitVerification},
		{&sign.KeyError{Ref: "k", Err: errors.New("x")}, exitUsage},
		{errors.Join(errors.New("registry down"), violation), exitPolicy},
		{errors.Join(base, violation), exitPolicy},
		{errors.New("registry down"), exitFailure},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.err, got, tc.want)
		}
	}
}
