package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wso2img/wso2img/internal/testpgp"
)

// isProfile is a profile that extends the stock IS 5.8.0 alpine profile with a signed
// jar from the vendor, a config file and a directory.
func isProfile(w *world, jarURL, jarSum, extra string) string {
	w.file("conf/deployment.toml", "[server]\nhostname = \"is.acme.example\"\n", 0o644)
	w.file("webapps/console/index.html", "<h1>console</h1>\n", 0o644)
	w.file("webapps/console/bin/run.sh", "#!/bin/sh\n", 0o755)
	return fmt.Sprintf(`extends: wso2is-5.8.0-alpine
update: {wum: 1565855673150}
target: {repository: registry.example.com/acme/wso2is}
inputs:
  - url: %s
    sha256: "%s"
    signature: %s.asc
    dest: repository/components/lib/
  - path: conf/deployment.toml
    dest: repository/conf/deployment.toml
    mode: "0640"
  - path: webapps
    dest: repository/deployment/server/webapps
%s%s`, jarURL, jarSum, jarURL, w.vendor.gpgYAML(), extra)
}

func TestPlan(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	base := w.pushIS58()
	jarURL, jarSum := w.vendor.serve(t, "/maven2/mysql-connector-j-8.0.33.jar", []byte("a jar"), "good")
	file := w.profile("acme-is.yaml", isProfile(w, jarURL, jarSum, ""))

	r := runCLI(t, append([]string{"plan"}, append(w.flags(), file)...)...)
	if r.code != 0 {
		t.Fatalf("plan exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"acme-is",
		"5.8.0.1565855673150-alpine3.10  (unique)",
		"5.8.0-alpine3.10  (floating)",
		"docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10",
		base,
		"802:802",
		"4000 9443 9763",
		"/home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql-connector-j-8.0.33.jar  sha256:" + jarSum[:12] + "  (0644)",
		"/home/wso2carbon/wso2is-5.8.0/repository/conf/deployment.toml",
		"(0640)",
		"gpg signature by " + w.vendor.goodFPR,
		"/home/wso2carbon/wso2is-5.8.0/repository/deployment/server/webapps  ",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = runCLI(t, append([]string{"plan", "--json"}, append(w.flags(), file)...)...)
	if r.code != 0 {
		t.Fatalf("plan --json exit %d: %s", r.code, r.stderr)
	}
	var plans []struct {
		Profile string `json:"profile"`
		Tags    []struct {
			Tag    string `json:"tag"`
			Unique bool   `json:"unique"`
		} `json:"tags"`
		Base struct {
			Ref, Digest, Pull string
		} `json:"base"`
		UID, GID int
		Ports    []int
		Inputs   []struct {
			Source, Digest, Dest, Mode, Signer string
			Dir                                bool
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &plans); err != nil {
		t.Fatalf("plan --json is not one JSON document: %v\n%s", err, r.stdout)
	}
	p := plans[0]
	if p.Profile != "acme-is" || p.Base.Digest != base || p.UID != 802 || len(p.Ports) != 3 || len(p.Tags) != 2 || !p.Tags[0].Unique {
		t.Errorf("plan JSON = %+v", p)
	}
	if in := p.Inputs[0]; in.Digest != "sha256:"+jarSum || in.Source != jarURL || in.Signer != w.vendor.goodFPR || in.Mode != "0644" {
		t.Errorf("jar input = %+v", in)
	}
	if in := p.Inputs[2]; !in.Dir || in.Dest != "/home/wso2carbon/wso2is-5.8.0/repository/deployment/server/webapps" {
		t.Errorf("directory input = %+v", in)
	}
	if strings.Contains(r.stdout, "fetched") || strings.Contains(r.stdout, "cached") {
		t.Errorf("logs leaked into stdout:\n%s", r.stdout)
	}
}

// TestPlanRefusesBadInputs: each bad input exits 3 and names the profile, the input
// and what was expected and found.
func TestPlanRefusesBadInputs(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	base := w.pushIS58()
	content := []byte("the real jar")
	goodURL, goodSum := w.vendor.serve(t, "/good.jar", content, "good")

	// A plain-HTTP server that counts connections: an http:// input must never reach it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })

	for _, tc := range []struct {
		name  string
		input string
		extra string
		want  []string
	}{
		{"checksum mismatch", fmt.Sprintf("url: %s\n    sha256: \"%s\"", goodURL, strings.Repeat("0", 64)),
			"", []string{`profile "p"`, "inputs[0]", goodURL, "sha256 mismatch", "expected " + strings.Repeat("0", 64), "found " + goodSum}},
		{"signature by another key", signed(t, w, "/other.jar", "other"), "",
			[]string{`profile "p"`, "inputs[0]", "gpg signature"}},
		{"key not pinned", signed(t, w, "/unpinned.jar", "unpinned"), "",
			[]string{`profile "p"`, "inputs[0]", "gpg signature", strings.ToUpper(testpgp.Fingerprint(w.vendor.keys["unpinned"]))}},
		{"expired key", signed(t, w, "/expired.jar", "expired"), "",
			[]string{`profile "p"`, "inputs[0]", "gpg signature", "expired"}},
		{"revoked key", signed(t, w, "/revoked.jar", "revoked"), "",
			[]string{`profile "p"`, "inputs[0]", "gpg signature", "revoked"}},
		{"tampered content", fmt.Sprintf("url: %s\n    sha256: \"%s\"\n    signature: %s", tamperedURL(t, w), sumOf("tampered"), goodURL+".asc"), "",
			[]string{`profile "p"`, "inputs[0]", "gpg signature"}},
		{"plain http", fmt.Sprintf("url: http://%s/x.jar\n    sha256: \"%s\"", ln.Addr(), goodSum), "",
			[]string{`profile "p"`, "inputs[0]", "https"}},
		{"base digest moved", fmt.Sprintf("url: %s\n    sha256: \"%s\"", goodURL, goodSum), "base: {digest: \"sha256:" + strings.Repeat("b", 64) + "\"}\n",
			[]string{`profile "p"`, "base.digest", "expected sha256:" + strings.Repeat("b", 64), "found " + base}},
		{"local file checksum", "path: conf/local.toml\n    sha256: \"" + strings.Repeat("c", 64) + "\"", "",
			[]string{`profile "p"`, "inputs[0]", "local.toml", "sha256 mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.file("conf/local.toml", "local", 0o644)
			file := w.profile("p.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\n%sinputs:\n  - %s\n    dest: lib/\n%s", tc.extra, tc.input, w.vendor.gpgYAML()))
			r := runCLI(t, append([]string{"plan"}, append(w.flags(), file)...)...)
			if r.code != 3 {
				t.Fatalf("exit %d, want 3 (verification failure): %s", r.code, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("error lacks %q:\n%s", want, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("a failed plan printed a plan:\n%s", r.stdout)
			}
		})
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("the http:// input made %d connection(s); it must be refused before connecting", n)
	}
}

func signed(t *testing.T, w *world, path, key string) string {
	url, sum := w.vendor.serve(t, path, []byte("jar signed by "+key), key)
	return fmt.Sprintf("url: %s\n    sha256: \"%s\"\n    signature: %s.asc", url, sum, url)
}

func tamperedURL(t *testing.T, w *world) string {
	url, _ := w.vendor.serve(t, "/tampered.jar", []byte("tampered"), "")
	return url
}

func sumOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestPlanTLSAndCA(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	w.pushIS58()
	url, sum := w.vendor.serve(t, "/x.jar", []byte("x"), "")
	file := w.profile("p.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {url: %s, sha256: \"%s\", dest: lib/}\n", url, sum))
	noCA := []string{"plan", "--insecure-registry", w.reg.Host, "--mirror", "docker.wso2.com=" + w.prefix, "--cache-dir", w.cache, file}

	t.Setenv("SSL_CERT_FILE", "")
	r := runCLI(t, noCA...)
	if r.code != 3 || !strings.Contains(r.stderr, "tls") || !strings.Contains(r.stderr, "--ca-file") {
		t.Errorf("without the vendor's CA: exit %d, %s; want 3 and a hint about --ca-file", r.code, r.stderr)
	}
	t.Setenv("SSL_CERT_FILE", w.vendor.caFile)
	if r := runCLI(t, noCA...); r.code != 0 {
		t.Errorf("with SSL_CERT_FILE: exit %d, %s", r.code, r.stderr)
	}
}

func TestPlanProblems(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	w.pushIS58()
	for _, tc := range []struct {
		name, yaml string
		code       int
		want       []string
	}{
		{"root user", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nuser: {uid: 0}\n", 2, []string{"p.yaml:3", "user.uid", "0 is root"}},
		{"missing platform", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nplatforms: [linux/amd64, linux/arm64]\n", 2, []string{`profile "p"`, "no linux/arm64 image", "linux/amd64"}},
		{"missing base tag", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673151}\n", 1, []string{`profile "p"`, "resolving base", "5.8.0.1565855673151-alpine3.10"}},
		{"home differs", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nhome: /home/wso2carbon/wso2is\n", 2, []string{"home", "WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := w.profile("p.yaml", tc.yaml)
			r := runCLI(t, append([]string{"plan"}, append(w.flags(), file)...)...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tc.code, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("error lacks %q:\n%s", want, r.stderr)
				}
			}
		})
	}
}
