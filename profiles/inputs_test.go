package profiles_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/profiles"
)

const sum64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestInputKinds(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "apps/bundle.zip", "PK")
	write(t, dir, "certs/root.pem", "x")
	file := write(t, dir, "p.yaml", `extends: wso2is-7.1.0
update: {level: 3}
inputs:
  - url: https://nexus.acme.example/repo/apps-1.0.zip
    sha256: "`+sum64+`"
    auth: {env: NEXUS_AUTH, scheme: basic}
    maxSize: 500MiB
    extract: true
    dest: repository/deployment/server/carbonapps
  - path: apps/bundle.zip
    extract: true
    maxSize: 1048576
    dest: repository/deployment/server/carbonapps/
  - truststore:
      certificates:
        - path: certs/root.pem
        - {url: "https://pki.acme.example/ca.crt", sha512: "`+strings.Repeat("b", 128)+`", alias: acme-ca, auth: {env: PKI_TOKEN}}
      password: {env: TS_PASSWORD}
      allowNonCA: true
  - truststore: {certificates: [{path: certs/root.pem}], format: jks}
    dest: repository/resources/security/extra/
`)
	p, err := profiles.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	in := p.Inputs
	if a := in[0].Auth; a == nil || a.Env != "NEXUS_AUTH" || a.Scheme != "basic" || in[0].MaxSize != 500<<20 || !in[0].Extract {
		t.Errorf("inputs[0] = %+v, auth %+v", in[0], in[0].Auth)
	}
	if in[1].MaxSize != 1<<20 {
		t.Errorf("inputs[1].maxSize = %d", in[1].MaxSize)
	}
	const home = "/home/wso2carbon/wso2is-7.1.0"
	// An extracted archive fills dest, with or without a trailing slash.
	for i := range 2 {
		if got := p.DestPath(i); got != home+"/repository/deployment/server/carbonapps" {
			t.Errorf("DestPath(%d) = %s, want the carbonapps folder itself", i, got)
		}
	}
	ts := in[2].TrustStore
	if ts == nil || len(ts.Certificates) != 2 || ts.Password.Env != "TS_PASSWORD" || !ts.AllowNonCA || ts.Certificates[1].Alias != "acme-ca" {
		t.Fatalf("truststore = %+v", ts)
	}
	if c := ts.Certificates[0]; c.Path != filepath.Join(dir, "certs/root.pem") || c.Root != dir {
		t.Errorf("certificate path %s (root %s), want it resolved against the profile's folder", c.Path, c.Root)
	}
	if got := p.TrustStoreDest(2, "client-truststore.p12"); got != home+"/repository/resources/security/client-truststore.p12" {
		t.Errorf("TrustStoreDest = %s", got)
	}
	if got := p.DestPath(3); got != home+"/repository/resources/security/extra/client-truststore.jks" {
		t.Errorf("DestPath of a JKS trust store = %s", got)
	}
	// Nothing secret is in the profile, and so in its digest: names of variables only.
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"auth":{"env":"NEXUS_AUTH","scheme":"basic"}`, `"password":{"env":"TS_PASSWORD"}`, `"maxSize":524288000`, `"extract":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("profile JSON lacks %s:\n%s", want, b)
		}
	}
}

// TestOldInputsKeepTheirDigest: a profile without the newer input fields marshals as
// before, so the digest (and rebuild ID) of every existing image stays what it was.
func TestOldInputsKeepTheirDigest(t *testing.T) {
	b, err := json.Marshal(profiles.Input{URL: "https://h/x.jar", SHA256: sum64, Dest: "lib/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"url":"https://h/x.jar","sha256":"` + sum64 + `","dest":"lib/"}`; string(b) != want {
		t.Errorf("an input marshals as %s, want %s", b, want)
	}
}

func TestInputProblems(t *testing.T) {
	const head = "extends: wso2is-7.1.0\nupdate: {level: 3}\ninputs:\n"
	const url = "https://repo.example/a.jar"
	for _, tc := range []struct {
		name, yaml string
		field, msg string
		secret     string // must not appear in the error
	}{
		{"user info", "  - {url: \"https://deployer:hunter2@repo.example/a.jar\", sha256: \"" + sum64 + "\", dest: lib/}\n", "inputs[0].url", "carries a credential (a user name or password before the host)", "hunter2"},
		{"token parameter", "  - {url: \"" + url + "?Token=hunter2\", sha256: \"" + sum64 + "\", dest: lib/}\n", "inputs[0].url", `the query parameter "Token"`, "hunter2"},
		{"presigned URL", "  - {url: \"" + url + "?X-Amz-Date=1&X-Amz-Signature=hunter2\", sha256: \"" + sum64 + "\", dest: lib/}\n", "inputs[0].url", `the query parameter "X-Amz-Signature"`, "hunter2"},
		{"word in a parameter", "  - {url: \"" + url + "?upload_token=hunter2\", sha256: \"" + sum64 + "\", dest: lib/}\n", "inputs[0].url", `"upload_token"`, "hunter2"},
		{"signature URL", "  - {url: \"" + url + "\", sha256: \"" + sum64 + "\", signature: \"" + url + ".asc?sig=hunter2\", dest: lib/}\n", "inputs[0].signature", `the query parameter "sig"`, "hunter2"},
		{"certificate URL", "  - truststore: {certificates: [{url: \"https://u:hunter2@pki.example/ca.pem\", sha256: \"" + sum64 + "\"}]}\n", "inputs[0].truststore.certificates[0].url", "carries a credential", "hunter2"},
		{"auth on a path", "  - {path: a.jar, dest: lib/, auth: {env: TOKEN}}\n", "inputs[0].auth", "a local path needs none", ""},
		{"auth without env", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, auth: {scheme: basic}}\n", "inputs[0].auth.env", "required", ""},
		{"auth bad env", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, auth: {env: \"MY-TOKEN\"}}\n", "inputs[0].auth.env", "not an environment variable name", ""},
		{"auth bad scheme", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, auth: {env: T, scheme: digest}}\n", "inputs[0].auth.scheme", `"digest" is not a scheme`, ""},
		{"auth with a value", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, auth: {token: hunter2}}\n", "inputs[0].auth.token", "unknown field", ""},
		{"maxSize unit", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, maxSize: 2XB}\n", "inputs[0].maxSize", `unknown unit "XB"`, ""},
		{"maxSize text", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, maxSize: lots}\n", "inputs[0].maxSize", "not a size", ""},
		{"maxSize list", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, maxSize: [1]}\n", "inputs[0].maxSize", "expected a size", ""},
		{"maxSize overflow", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, maxSize: 99999999999TiB}\n", "inputs[0].maxSize", "out of range", ""},
		{"extract with mode", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, extract: true, mode: \"0644\"}\n", "inputs[0].mode", "keeps the modes of its entries", ""},
		{"extract a directory", "  - {path: dir, dest: lib, extract: true}\n", "inputs[0].extract", "dir is a directory", ""},
		{"two kinds", "  - {url: " + url + ", sha256: \"" + sum64 + "\", dest: lib/, truststore: {certificates: [{path: a.pem}]}}\n", "inputs[0]", "has url and truststore", ""},
		{"no kind", "  - {dest: lib/}\n", "inputs[0]", "needs a url, a path or a truststore", ""},
		{"truststore without certificates", "  - truststore: {format: JKS}\n", "inputs[0].truststore.certificates", "required", ""},
		{"truststore format", "  - truststore: {certificates: [{path: a.pem}], format: PEM}\n", "inputs[0].truststore.format", `"PEM" is not a trust store format`, ""},
		{"truststore checksum", "  - truststore: {certificates: [{path: a.pem}]}\n    sha256: \"" + sum64 + "\"\n", "inputs[0].sha256", "set it on each of truststore.certificates", ""},
		{"truststore literal password", "  - truststore: {certificates: [{path: a.pem}], password: wso2carbon}\n", "inputs[0].truststore.password", "expected a mapping of fields", ""},
		{"truststore password without env", "  - truststore: {certificates: [{path: a.pem}], password: {}}\n", "inputs[0].truststore.password.env", "required", ""},
		{"certificate url without checksum", "  - truststore: {certificates: [{url: \"https://pki.example/ca.pem\"}]}\n", "inputs[0].truststore.certificates[0].sha256", "needs a sha256", ""},
		{"certificate with both", "  - truststore: {certificates: [{url: \"https://pki.example/ca.pem\", path: a.pem}]}\n", "inputs[0].truststore.certificates[0]", "both url and path", ""},
		{"certificate signature without keys", "  - truststore: {certificates: [{path: a.pem, signature: a.pem.asc}]}\n", "inputs[0].truststore.certificates.signature", "gpg.keyring", ""},
		{"truststore over a file", "  - truststore: {certificates: [{path: a.pem}], format: PKCS12}\n  - {path: a.pem, dest: repository/resources/security/client-truststore.p12}\n", "inputs[1].dest", "is also where inputs[0] goes", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "dir"), 0o755); err != nil {
				t.Fatal(err)
			}
			file := write(t, dir, "p.yaml", head+tc.yaml)
			_, err := profiles.Load(file)
			var perr *profiles.Error
			if !errors.As(err, &perr) {
				t.Fatalf("Load = %v, want a *profiles.Error", err)
			}
			found := false
			for _, p := range perr.Problems {
				found = found || (p.Field == tc.field && strings.Contains(p.Message, tc.msg))
			}
			if !found {
				t.Errorf("problems = %v, want one at %q mentioning %q", perr.Problems, tc.field, tc.msg)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("the error repeats the secret: %v", err)
			}
		})
	}
}

func TestURLCredential(t *testing.T) {
	for raw, want := range map[string]string{
		"https://repo1.maven.org/maven2/a/b/1.0/b-1.0.jar":       "",
		"https://h/x.jar?version=1&classifier=sources":           "",
		"https://h/x.jar#token=x":                                "",
		"https://u@h/x.jar":                                      "a user name or password before the host",
		"https://u:p@h:8443/x.jar":                               "a user name or password before the host",
		"https://h/p@th/x.jar":                                   "",
		"https://h/x.jar?api_key=1":                              `the query parameter "api_key"`,
		"https://h/x.jar?a=1;KEY=2":                              `the query parameter "KEY"`,
		"https://h/x.jar?x%2Dgoog%2Dsignature=1":                 `the query parameter "x-goog-signature"`,
		"https://h/x.jar?sv=2020&sig=abc":                        `the query parameter "sig"`,
		"https://h/x.jar?password":                               `the query parameter "password"`,
		"not a url with user:pass@host":                          "a user name or password before the host", // refused, whatever it is
		"https://bad host:pass@h/x.jar":                          "a user name or password before the host",
		"https://h/download?file=x.jar&private_token=glpat-XYZ1": `the query parameter "private_token"`,
	} {
		if got := profiles.URLCredential(raw); got != want {
			t.Errorf("URLCredential(%q) = %q, want %q", raw, got, want)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1", "2GiB", "500 MB", "1kb", "99999999999999999999", "-1", "1.5GiB", "GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := profiles.ParseByteSize(s)
		if err == nil && n < 0 {
			t.Errorf("ParseByteSize(%q) = %d, a negative size", s, n)
		}
	})
}
