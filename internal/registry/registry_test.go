package registry_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

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

func TestReadHelpers(t *testing.T) {
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	o := registry.Options{Insecure: []string{host}}
	ctx := context.Background()

	img, _ := random.Image(64, 1)
	ref, _ := o.ParseReference(host + "/a/b:1")
	if err := remote.Write(ref, img, o.Remote(ctx)...); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, err := o.Digest(ctx, ref); err != nil || d != want.String() {
		t.Errorf("Digest = %q, %v; want %s", d, err, want)
	}
	missing, _ := o.ParseReference(host + "/a/b:2")
	if d, err := o.Digest(ctx, missing); err != nil || d != "" {
		t.Errorf("Digest of a missing tag = %q, %v; want \"\", nil", d, err)
	}
	if desc, err := o.Get(ctx, missing); err != nil || desc != nil {
		t.Errorf("Get of a missing tag = %v, %v", desc, err)
	}
	if _, err := remote.Get(missing, o.Remote(ctx)...); !registry.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	repo, _ := o.NewRepository(host + "/a/b")
	if got := registry.CosignTag(repo, want.String(), registry.SigSuffix).TagStr(); got != "sha256-"+want.Hex+".sig" {
		t.Errorf("CosignTag = %s", got)
	}

	// An index: platform images sorted, attestation manifests passed over, an image
	// with no platform refused.
	arm, _ := random.Image(64, 1)
	att, _ := random.Image(64, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}},
	)
	iref, _ := o.ParseReference(host + "/a/idx:1")
	if err := remote.WriteIndex(iref, idx, o.Remote(ctx)...); err != nil {
		t.Fatal(err)
	}
	desc, err := o.Get(ctx, iref)
	if err != nil {
		t.Fatal(err)
	}
	pis, err := registry.PlatformImages(desc)
	if err != nil || len(pis) != 2 || pis[0].Platform != "linux/amd64" || pis[1].Platform != "linux/arm64" || pis[0].Digest != want {
		t.Errorf("PlatformImages = %+v, %v", pis, err)
	}
	bad := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
	bref, _ := o.ParseReference(host + "/a/idx:bad")
	if err := remote.WriteIndex(bref, bad, o.Remote(ctx)...); err != nil {
		t.Fatal(err)
	}
	desc, _ = o.Get(ctx, bref)
	if _, err := registry.PlatformImages(desc); err == nil || !strings.Contains(err.Error(), "no platform") {
		t.Errorf("an image entry with no platform: %v", err)
	}
}
