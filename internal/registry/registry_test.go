package registry_test

import (
	"testing"

	"github.com/wso2img/wso2img/internal/registry"
)

func TestMirrored(t *testing.T) {
	o := registry.Options{Mirrors: []registry.Mirror{
		{From: "docker.wso2.com", To: "127.0.0.1:5000"},
		{From: "registry.wso2.com/wso2-is", To: "mirror.acme.com/wso2/is-mirror"},
	}}
	for in, want := range map[string]string{
		"docker.wso2.com/wso2is:5.8.0":           "127.0.0.1:5000/wso2is:5.8.0",
		"docker.wso2.com/wso2is@sha256:abc":      "127.0.0.1:5000/wso2is@sha256:abc",
		"docker.wso2.com.evil.io/wso2is:5.8.0":   "docker.wso2.com.evil.io/wso2is:5.8.0",
		"registry.wso2.com/wso2-is/is:7.1.0.3":   "mirror.acme.com/wso2/is-mirror/is:7.1.0.3",
		"registry.wso2.com/wso2-isx/is:7.1.0.3":  "registry.wso2.com/wso2-isx/is:7.1.0.3",
		"registry.wso2.com/wso2-apim/am:4.5.0.1": "registry.wso2.com/wso2-apim/am:4.5.0.1",
	} {
		got, mirrored := o.Mirrored(in)
		if got != want || mirrored != (in != want) {
			t.Errorf("Mirrored(%q) = %q, %v; want %q", in, got, mirrored, want)
		}
	}
}

func TestParseMirror(t *testing.T) {
	m, err := registry.ParseMirror("docker.wso2.com/=127.0.0.1:5000/")
	if err != nil || m.From != "docker.wso2.com" || m.To != "127.0.0.1:5000" {
		t.Errorf("ParseMirror = %+v, %v", m, err)
	}
	for _, bad := range []string{"", "docker.wso2.com", "=x", "x="} {
		if _, err := registry.ParseMirror(bad); err == nil {
			t.Errorf("ParseMirror(%q) succeeded", bad)
		}
	}
}

func TestInsecureHosts(t *testing.T) {
	o := registry.Options{Insecure: []string{"127.0.0.1:5000"}}
	ref, err := o.ParseReference("127.0.0.1:5000/wso2is:5.8.0")
	if err != nil {
		t.Fatal(err)
	}
	if s := ref.Context().Registry.Scheme(); s != "http" {
		t.Errorf("scheme for an insecure host = %s", s)
	}
	ref, err = o.ParseReference("registry.wso2.com/wso2-is/is:7.1.0.3")
	if err != nil {
		t.Fatal(err)
	}
	if s := ref.Context().Registry.Scheme(); s != "https" {
		t.Errorf("scheme for a normal host = %s", s)
	}
	repo, err := o.NewRepository("127.0.0.1:5000/acme/wso2is")
	if err != nil || repo.Registry.Scheme() != "http" {
		t.Errorf("NewRepository = %v, %v", repo, err)
	}
}
