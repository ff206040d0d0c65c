package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/sign"
)

// stockCosign runs a stock cosign CLI offline against the loopback registry.
func stockCosign(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	return signtest.Cosign(t, bin, append(args, signtest.Offline...)...)
}

// TestSignedBuild: build pushes by digest, signs with the key and attaches provenance
// and an SBOM, then tags; `wso2img verify` and the stock cosign CLIs (v2 and v3) agree,
// and reject another key.
func TestSignedBuild(t *testing.T) {
	testenv.Need(t, "cosign-v2", "cosign-v3")
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	t.Setenv("COSIGN_PASSWORD", signtest.Password)
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")

	r, out := w.build(t, bk, w.prefix+"/out", "--key", key, "--tlog-upload=false", file)
	if r.code != 0 || !out[0].Signed {
		t.Fatalf("signed build: exit %d %+v:\n%s", r.code, out, r.stderr)
	}
	image := out[0].Image + "@" + out[0].Digest
	sigTag := out[0].Image + ":" + strings.Replace(out[0].Digest, ":", "-", 1)
	for _, suffix := range []string{".sig", ".att"} {
		remoteImage(t, sigTag+suffix)
	}
	if _, desc := remoteImage(t, image); desc.MediaType.IsIndex() {
		t.Errorf("attestations turned a single-platform image into an index")
	}

	v := runCLI(t, "verify", "--key", pub, "--insecure-ignore-tlog", "--insecure-registry", reg.Host, "--json", out[0].Image+":"+out[0].Tags[0])
	if v.code != 0 {
		t.Errorf("wso2img verify of the signed build: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	v = runCLI(t, "verify", "--key", otherPub, "--insecure-ignore-tlog", "--insecure-registry", reg.Host, image)
	if v.code != 4 {
		t.Errorf("wso2img verify with another key: exit %d, want 4\n%s", v.code, v.stdout)
	}

	for _, cosign := range []string{"cosign-v2", "cosign-v3"} {
		if o, err := stockCosign(t, cosign, "verify", "--key", pub, image); err != nil {
			t.Errorf("%s verify rejects our signature: %v\n%s", cosign, err, o)
		}
		for _, typ := range []string{"slsaprovenance1", "spdxjson"} {
			if o, err := stockCosign(t, cosign, "verify-attestation", "--type", typ, "--key", pub, image); err != nil {
				t.Errorf("%s verify-attestation --type %s rejects ours: %v\n%s", cosign, typ, err, o)
			}
		}
		if o, err := stockCosign(t, cosign, "verify", "--key", otherPub, image); err == nil {
			t.Errorf("%s verify accepted our signature with another key:\n%s", cosign, o)
		}
	}

	// The same image again: nothing pushed, and it says it is signed.
	r, out = w.build(t, bk, w.prefix+"/out", "--key", key, "--tlog-upload=false", file)
	if r.code != 0 || out[0].Pushed || !out[0].Signed {
		t.Errorf("rebuild of a signed image: exit %d %+v", r.code, out)
	}
}

// TestSigningFailureLeavesNoTag: the image is pushed by digest, signing fails, and no
// tag names it; a rerun with signing that works completes the job.
func TestSigningFailureLeavesNoTag(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\n")
	// Keyless signing that fails after the push: the identity token is only read when
	// the certificate is requested, and Fulcio is not there anyway.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	r, out := w.build(t, bk, w.prefix+"/out", "--sign", "--identity-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "--fulcio-url", dead, "--rekor-url", dead, file)
	if r.code != 1 || len(out) != 1 || len(out[0].Tags) != 0 || out[0].Signed || !out[0].Pushed || !strings.Contains(r.stderr, "was pushed but not tagged") {
		t.Fatalf("failed signing: exit %d %+v, want 1, the untagged digest and a clear message:\n%s", r.code, out, r.stderr)
	}
	tags, err := listTags(w.prefix + "/out/wso2is")
	if err != nil {
		t.Fatal(err)
	}
	if len(tags) != 0 {
		t.Errorf("after a failed signing the repository has tags %v, want none", tags)
	}

	key, _ := signtest.Keys(t)
	t.Setenv("COSIGN_PASSWORD", signtest.Password)
	r, out = w.build(t, bk, w.prefix+"/out", "--key", key, "--tlog-upload=false", file)
	if r.code != 0 || !out[0].Signed || len(out[0].Tags) != 2 {
		t.Errorf("rerun: exit %d %+v:\n%s", r.code, out, r.stderr)
	}
}

func listTags(repo string) ([]string, error) {
	o := registry.Options{Insecure: []string{strings.Split(repo, "/")[0]}}
	r, err := o.NewRepository(repo)
	if err != nil {
		return nil, err
	}
	all, err := remote.List(r)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil, nil // a repository holding only untagged manifests lists as unknown
	}
	var tags []string
	for _, t := range all {
		if !strings.HasPrefix(t, "sha256-") {
			tags = append(tags, t)
		}
	}
	return tags, err
}

// TestBaseVerification: a profile with base.verify builds only on a base signed by the
// key; otherwise it exits 3 and the registry is left as it was.
func TestBaseVerification(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	base := w.pushIS58()
	wso2Key, wso2Pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	profile := func(pub string) string {
		return w.profile("p.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nbase:\n  verify: {key: %s, insecureIgnoreTlog: true}\n", pub))
	}

	// Unsigned base.
	before := requestCount(t, reg)
	r, out := w.build(t, bk, w.prefix+"/out", profile(wso2Pub))
	if r.code != 3 || len(out) != 0 || !strings.Contains(r.stderr, `profile "p"`) || !strings.Contains(r.stderr, base) {
		t.Fatalf("unsigned base: exit %d %+v, want 3 naming the profile and the base:\n%s", r.code, out, r.stderr)
	}
	if wr := writes(t, reg, before); len(wr) != 0 {
		t.Errorf("a base that failed verification still led to writes: %v", wr)
	}

	// The base signed by WSO2's key (here, a test key) at its pulled location.
	ctx := context.Background()
	s, err := sign.New(ctx, sign.Options{Key: wso2Key, Password: signtest.PasswordFunc, Registry: registry.Options{Insecure: []string{reg.Host}}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(w.prefix+"/wso2is@"+base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(ctx, d, nil); err != nil {
		t.Fatal(err)
	}
	r, _ = w.build(t, bk, w.prefix+"/out", profile(otherPub))
	if r.code != 3 {
		t.Errorf("base signed by another key: exit %d, want 3:\n%s", r.code, r.stderr)
	}
	r, out = w.build(t, bk, w.prefix+"/out", profile(wso2Pub))
	if r.code != 0 || len(out) != 1 {
		t.Errorf("base signed by the pinned key: exit %d:\n%s", r.code, r.stderr)
	}
	// plan checks it too.
	p := runCLI(t, append([]string{"plan"}, append(w.flags(), profile(otherPub))...)...)
	if p.code != 3 {
		t.Errorf("plan with a base signed by another key: exit %d", p.code)
	}
}
