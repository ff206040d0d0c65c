package verify_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// TestLoadPolicy: a policy file overrides the defaults key by key; unknown keys, bad
// values and several documents are errors that name the file.
func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	p, err := verify.LoadPolicy(write("ok.yaml", `
ports: [9443, "8280/tcp", 5005/udp]
baseDigests: [sha256:`+strings.Repeat("a", 64)+`]
allowSetuid: [/usr/bin/su]
requireHealthcheck: true
`))
	if err != nil {
		t.Fatal(err)
	}
	def := verify.DefaultPolicy()
	if !slices.Equal(p.Ports, []string{"9443", "8280/tcp", "5005/udp"}) || len(p.BaseDigests) != 1 || !p.RequireHealthcheck ||
		!slices.Equal(p.RequiredLabels, def.RequiredLabels) || !slices.Equal(p.Attestations, []string{sign.PredicateSLSAProvenance, sign.PredicateSPDX}) {
		t.Errorf("policy %+v", p)
	}
	if p, err := verify.LoadPolicy(write("clear.yaml", "attestations: []\nrequiredLabels: []\n")); err != nil || len(p.Attestations) != 0 || len(p.RequiredLabels) != 0 {
		t.Errorf("empty lists do not clear: %+v %v", p, err)
	}
	if p, err := verify.LoadPolicy(write("empty.yaml", "")); err != nil || !slices.Equal(p.Ports, def.Ports) {
		t.Errorf("empty file: %+v %v", p, err)
	}

	for name, body := range map[string]string{
		"unknown.yaml":  "allowroot: true\n", // the key is allowRoot
		"nested.yaml":   "ports: [9443]\nbase:\n  digests: []\n",
		"port.yaml":     "ports: [70000]\n",
		"proto.yaml":    "ports: [\"9443/http\"]\n",
		"digest.yaml":   "baseDigests: [sha256:abc]\n",
		"relative.yaml": "allowSetuid: [usr/bin/su]\n",
		"type.yaml":     "allowRoot: [yes]\n",
		"twodocs.yaml":  "allowRoot: false\n---\nallowRoot: true\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := write(name, body)
			_, err := verify.LoadPolicy(file)
			var perr *verify.PolicyError
			if !errors.As(err, &perr) || perr.File != file {
				t.Fatalf("%q: %v", body, err)
			}
		})
	}
	if _, err := verify.LoadPolicy(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}

// FuzzParsePolicy: the policy parser never panics.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte("ports: [9443]\n"))
	f.Add([]byte("allowRoot: true\nbaseDigests: [sha256:" + strings.Repeat("0", 64) + "]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = verify.ParsePolicy(data)
	})
}
