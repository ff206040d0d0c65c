package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/policy"
	"github.com/wso2img/wso2img/sign"
)

// pubKey writes a cosign public key (the policy package's test key) and returns its path.
func pubKey(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "policy", "testdata", "signer.pub"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "cosign.pub")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type policyDoc struct {
	Kind     string
	Metadata struct{ Name string }
	Spec     struct {
		Images []struct{ Glob string }
		Rules  []struct {
			VerifyImages []struct {
				ImageReferences []string `yaml:"imageReferences"`
				Attestations    []struct{ Type string }
			} `yaml:"verifyImages"`
		}
	}
}

func policyDocs(t *testing.T, stdout string) []policyDoc {
	t.Helper()
	var docs []policyDoc
	dec := yaml.NewDecoder(strings.NewReader(stdout))
	for {
		var d policyDoc
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("stdout is not YAML: %v\n%s", err, stdout)
		}
		docs = append(docs, d)
	}
}

func TestPolicyFromProfiles(t *testing.T) {
	profiles := []string{filepath.Join("..", "..", "examples", "wso2is-mysql.yaml"), filepath.Join("..", "..", "examples", "wso2am-gateway.yaml")}
	r := runCLI(t, append([]string{"policy", "--key", pubKey(t), "--registry", "registry.local:5000/prod", "--image", "registry.local:5000/extra/**"}, profiles...)...)
	if r.code != 0 {
		t.Fatalf("policy exit %d: %s", r.code, r.stderr)
	}
	docs := policyDocs(t, r.stdout)
	if len(docs) != 3 || docs[0].Metadata.Name != "wso2img-signature" || docs[1].Metadata.Name != "wso2img-attestations" || docs[2].Kind != "ClusterPolicy" {
		t.Fatalf("documents %+v, want the two ClusterImagePolicies and the ClusterPolicy", docs)
	}
	var globs []string
	for _, g := range docs[0].Spec.Images {
		globs = append(globs, g.Glob)
	}
	want := []string{
		"registry.local:5000/prod/wso2is:*", "registry.local:5000/prod/wso2is@*",
		"registry.local:5000/prod/wso2am-gateway:*", "registry.local:5000/prod/wso2am-gateway@*",
		"registry.local:5000/extra/**",
	}
	if strings.Join(globs, " ") != strings.Join(want, " ") {
		t.Errorf("globs %q, want %q (the profiles' repositories under --registry, then --image)", globs, want)
	}
	if refs := docs[2].Spec.Rules[0].VerifyImages[0].ImageReferences; strings.Join(refs, " ") != strings.Join(want, " ") {
		t.Errorf("Kyverno imageReferences %q, want %q", refs, want)
	}
	if !strings.Contains(r.stdout, "url: https://rekor.sigstore.dev") {
		t.Error("the transparency log is not required by default")
	}
	if r.stderr != "" {
		t.Errorf("stderr %q: policy writes only YAML, on stdout", r.stderr)
	}
}

func TestPolicyKeylessKyvernoVulnScan(t *testing.T) {
	r := runCLI(t, "policy", "--kind", "kyverno", "--name", "acme-wso2",
		"--certificate-identity", "https://kubernetes.io/namespaces/builds/serviceaccounts/nightly-wso2img-rebuild",
		"--certificate-oidc-issuer-regexp", `^https://container\.googleapis\.com/v1/projects/acme/.*$`,
		"--require-vuln-scan", "--max-scan-age", "36h", "--insecure-ignore-tlog", "--image", "registry.acme.com/wso2/*")
	if r.code != 0 {
		t.Fatalf("policy exit %d: %s", r.code, r.stderr)
	}
	docs := policyDocs(t, r.stdout)
	if len(docs) != 1 || docs[0].Kind != "ClusterPolicy" || docs[0].Metadata.Name != "acme-wso2" {
		t.Fatalf("documents %+v, want one ClusterPolicy acme-wso2", docs)
	}
	var types []string
	for _, a := range docs[0].Spec.Rules[0].VerifyImages[0].Attestations {
		types = append(types, a.Type)
	}
	if want := []string{sign.PredicateSLSAProvenance, sign.PredicateSPDX, policy.PredicateVuln}; strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("attestations %v, want %v", types, want)
	}
	for _, want := range []string{"value: 36h0m0s", "ignoreTlog: true", `issuerRegExp: ^https://container\.googleapis\.com/v1/projects/acme/.*$`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

// The policies name the predicate types wso2img's signer writes.
func TestPolicyPredicatesAreSigns(t *testing.T) {
	if policy.PredicateSLSAProvenance != sign.PredicateSLSAProvenance || policy.PredicateSPDX != sign.PredicateSPDX {
		t.Errorf("policy requires %s and %s; sign attaches %s and %s", policy.PredicateSLSAProvenance, policy.PredicateSPDX, sign.PredicateSLSAProvenance, sign.PredicateSPDX)
	}
}

func TestPolicyUsageErrors(t *testing.T) {
	key := pubKey(t)
	id := []string{"--certificate-identity", "a@acme.com", "--certificate-oidc-issuer", "https://accounts.google.com"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no trust", []string{"--image", "r/x:*"}, "whom to trust"},
		{"key and identity", append([]string{"--key", key, "--image", "r/x:*"}, id...), "exclude each other"},
		{"no images", []string{"--key", key}, "which images"},
		{"age without scan", []string{"--key", key, "--image", "r/x:*", "--max-scan-age", "3d"}, "--max-scan-age without --require-vuln-scan"},
		{"bad age", []string{"--key", key, "--image", "r/x:*", "--require-vuln-scan", "--max-scan-age", "a week"}, `--max-scan-age: "a week"`},
		{"bad kind", []string{"--key", key, "--image", "r/x:*", "--kind", "gatekeeper"}, `--kind "gatekeeper"`},
		{"missing key file", []string{"--key", filepath.Join(t.TempDir(), "nope.pub"), "--image", "r/x:*"}, "--key: reading"},
		{"roots with key", []string{"--key", key, "--ca-roots", key, "--image", "r/x:*"}, "apply to keyless"},
		{"identity without issuer", []string{"--certificate-identity", "a@acme.com", "--image", "r/x:*"}, "no OIDC issuer"},
		{"both identity forms", append([]string{"--certificate-identity-regexp", ".*", "--image", "r/x:*"}, id...), "both a subject and a subject regexp"},
		{"not a public key", []string{"--key", filepath.Join("..", "..", "policy", "testdata", "fulcio-root.pem"), "--image", "r/x:*"}, "not a PEM public key"},
		{"no such profile", []string{"--key", key, "no-such-profile.yaml"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"policy"}, tc.args...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d (usage): %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q after a usage error", r.stdout)
			}
		})
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]string{"7d": "168h0m0s", "1d": "24h0m0s", "36h": "36h0m0s", "90m": "1h30m0s"} {
		got, err := parseAge(in)
		if err != nil || got.String() != want {
			t.Errorf("parseAge(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1d", "d", "1w", "0s", "-5h"} {
		if _, err := parseAge(in); err == nil {
			t.Errorf("parseAge(%q) accepted", in)
		}
	}
}

func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"7d", "36h", "90m", "0d", "-1d", "1w", "", "d", "99999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseAge(s)
		if err == nil && d <= 0 {
			t.Errorf("parseAge(%q) = %v: accepted a non-positive age", s, d)
		}
	})
}
