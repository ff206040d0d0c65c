package verify_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cempty "github.com/sigstore/cosign/v2/pkg/oci/empty"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

func startRegistry(t *testing.T) (host string, ro registry.Options) {
	t.Helper()
	testenv.Need(t, "registry")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg.Host, registry.Options{Insecure: []string{reg.Host}}
}

func subject() *sign.Subject {
	return &sign.Subject{
		Profile: "wso2is", Product: "wso2is", Version: "5.8.0", WUM: 1565855673150,
		BaseRef: "docker.wso2.com/wso2is:5.8.0", BaseDigest: signtest.BaseDigest,
		BuiltAt: time.Date(2019, 8, 15, 7, 54, 33, 0, time.UTC),
		Inputs: []sign.SubjectInput{{Source: "https://example.com/mysql.jar", Digest: "sha256:" + strings.Repeat("3", 64),
			Dest: "/home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql.jar"}},
	}
}

// pushGood pushes a well-behaved image to repo and returns it by digest.
func pushGood(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	return signtest.Push(t, host+"/"+repo+":1", signtest.Image(t, signtest.Config(), signtest.Files()))
}

func signer(t *testing.T, key string, ro registry.Options) *sign.Signer {
	t.Helper()
	s, err := sign.New(context.Background(), sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: ro})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifier(t *testing.T, ro registry.Options, so verify.SignatureOptions) *verify.Verifier {
	t.Helper()
	so.IgnoreTlog = true // offline: signatures here are made with --tlog-upload=false
	v, err := verify.New(context.Background(), verify.Options{Registry: ro, Signature: so})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func status(r *verify.Report, id string) verify.Status {
	if r == nil {
		return ""
	}
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

// TestVerifyRoundTrip: an image signed and attested by the library passes; the same
// image checked against another key, unsigned, or without attestations fails with a
// *ViolationError.
func TestVerifyRoundTrip(t *testing.T) {
	host, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	ctx := context.Background()

	signed := pushGood(t, host, "acme/signed")
	if err := signer(t, key, ro).SignBuild(ctx, signed, subject()); err != nil {
		t.Fatal(err)
	}
	unsigned := pushGood(t, host, "acme/unsigned")
	sigOnly := signtest.Push(t, host+"/acme/sigonly:1", signtest.Image(t, signtest.Config(), signtest.Files(),
		[]signtest.File{{Path: "x", Mode: 0o644, Data: "other"}}))
	if err := signer(t, key, ro).Sign(ctx, sigOnly, subject().Annotations()); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		image     string
		key       string
		sig, atts verify.Status
	}{
		{"signed", signed.String(), pub, verify.Pass, verify.Pass},
		{"signed, by tag", host + "/acme/signed:1", pub, verify.Pass, verify.Pass},
		{"wrong key", signed.String(), otherPub, verify.Fail, verify.Fail},
		{"unsigned", unsigned.String(), pub, verify.Fail, verify.Fail},
		{"no attestations", sigOnly.String(), pub, verify.Pass, verify.Fail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := verifier(t, ro, verify.SignatureOptions{Key: tc.key}).Verify(ctx, tc.image)
			if status(r, verify.CheckSignature) != tc.sig || status(r, verify.CheckAttestations) != tc.atts {
				t.Fatalf("signature %s, attestations %s, want %s, %s: %v\n%+v", status(r, verify.CheckSignature), status(r, verify.CheckAttestations), tc.sig, tc.atts, err, r)
			}
			var verr *verify.ViolationError
			if wantErr := tc.sig == verify.Fail || tc.atts == verify.Fail; wantErr != errors.As(err, &verr) || r.Passed == wantErr {
				t.Errorf("error %v, passed %v", err, r.Passed)
			}
		})
	}

	// Attestations can be dropped from the policy: then a signature is enough.
	p := verify.DefaultPolicy()
	p.Attestations = nil
	v, err := verify.New(ctx, verify.Options{Registry: ro, Signature: verify.SignatureOptions{Key: pub, IgnoreTlog: true}, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := v.Verify(ctx, sigOnly.String()); err != nil || status(r, verify.CheckAttestations) != verify.Skip {
		t.Errorf("without required attestations: %v", err)
	}
}

// TestSignatureCopiedFromAnotherDigest: a valid signature of image A copied to image
// B's signature tag verifies cryptographically (cosign's library accepts it without a
// claim verifier), but its payload names A's digest, so verify must reject it.
func TestSignatureCopiedFromAnotherDigest(t *testing.T) {
	host, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	ctx := context.Background()
	a := pushGood(t, host, "acme/a")
	b := signtest.Push(t, host+"/acme/a:other", signtest.Image(t, signtest.Config(), signtest.Files(),
		[]signtest.File{{Path: "b", Mode: 0o644, Data: "b"}}))
	if err := signer(t, key, ro).Sign(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	sigA, err := remote.Image(sigTag(a, ".sig"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sigTag(b, ".sig"), sigA); err != nil {
		t.Fatal(err)
	}

	pubV, err := sign.LoadPublicKey(ctx, pub)
	if err != nil {
		t.Fatal(err)
	}
	co := &cosign.CheckOpts{SigVerifier: pubV, IgnoreTlog: true, RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(ro.Remote(ctx)...)}}
	if _, _, err := cosign.VerifyImageSignatures(ctx, b, co); err != nil {
		t.Fatalf("precondition: without a claim verifier cosign should accept the copied signature: %v", err)
	}

	r, err := verifier(t, ro, verify.SignatureOptions{Key: pub}).Verify(ctx, b.String())
	var verr *verify.ViolationError
	if !errors.As(err, &verr) || status(r, verify.CheckSignature) != verify.Fail {
		t.Fatalf("a signature copied from %s verified %s: %v", a.DigestStr(), b.DigestStr(), err)
	}
	if !strings.Contains(r.Checks[0].Detail, "invalid or missing digest in claim") {
		t.Errorf("detail %q does not say the digest differs", r.Checks[0].Detail)
	}
}

// TestTamperedPayload: changing the signed payload (an annotation) breaks the signature.
func TestTamperedPayload(t *testing.T) {
	host, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	ctx := context.Background()
	img := pushGood(t, host, "acme/tampered")
	if err := signer(t, key, ro).Sign(ctx, img, map[string]string{"io.wso2img.product": "wso2is"}); err != nil {
		t.Fatal(err)
	}
	sigs, err := ociremote.Signatures(sigTag(img, ".sig"), ociremote.WithRemoteOptions(ro.Remote(ctx)...))
	if err != nil {
		t.Fatal(err)
	}
	list, err := sigs.Get()
	if err != nil || len(list) != 1 {
		t.Fatalf("%d signatures: %v", len(list), err)
	}
	payload, _ := list[0].Payload()
	b64, _ := list[0].Base64Signature()
	tampered := strings.Replace(string(payload), `"wso2is"`, `"wso2am"`, 1)
	if tampered == string(payload) {
		t.Fatalf("payload %s has no annotation to change", payload)
	}
	sig, err := static.NewSignature([]byte(tampered), b64)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := cmutate.AppendSignatures(cempty.Signatures(), false, sig)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(sigTag(img, ".sig"), forged); err != nil {
		t.Fatal(err)
	}
	r, err := verifier(t, ro, verify.SignatureOptions{Key: pub}).Verify(ctx, img.String())
	var verr *verify.ViolationError
	if !errors.As(err, &verr) || status(r, verify.CheckSignature) != verify.Fail {
		t.Fatalf("a tampered payload verified: %v", err)
	}
}

// TestVerifyPolicyAndSignature: a correctly signed image still fails when the policy
// audit fails, and the report says which check.
func TestVerifyPolicyAndSignature(t *testing.T) {
	host, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	ctx := context.Background()
	cfg := signtest.Config()
	cfg.User = "0:0"
	ref := signtest.Push(t, host+"/acme/root:1", signtest.Image(t, cfg, signtest.Files()))
	if err := signer(t, key, ro).SignBuild(ctx, ref, subject()); err != nil {
		t.Fatal(err)
	}
	r, err := verifier(t, ro, verify.SignatureOptions{Key: pub}).Verify(ctx, ref.String())
	var verr *verify.ViolationError
	if !errors.As(err, &verr) || len(verr.Failed) != 1 || verr.Failed[0].ID != verify.CheckUser || status(r, verify.CheckSignature) != verify.Pass {
		t.Fatalf("%v\n%+v", err, r)
	}
	var text strings.Builder
	if err := verify.WriteText(&text, []*verify.Report{r}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAILED", "FAIL    runs as a non-root user", "CIS Docker Benchmark 4.1", "PASS    signed by the expected key or identity", "ADVICE"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBase: the base verification before a build returns a *BaseError (exit 3) for an
// unsigned base or one signed by another key, nil for a good signature, and a plain
// error when the registry cannot be read.
func TestBase(t *testing.T) {
	host, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	ctx := context.Background()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	base := signtest.Push(t, host+"/wso2/wso2is:5.8.0", img)
	opts := verify.SignatureOptions{Key: pub, IgnoreTlog: true}

	err = verify.Base(ctx, ro, "wso2is", base, opts)
	var berr *verify.BaseError
	if !errors.As(err, &berr) || berr.Profile != "wso2is" || !strings.Contains(err.Error(), "no signatures found") {
		t.Fatalf("unsigned base: %v", err)
	}
	if err := signer(t, key, ro).Sign(ctx, base, nil); err != nil {
		t.Fatal(err)
	}
	if err := verify.Base(ctx, ro, "wso2is", base, opts); err != nil {
		t.Fatalf("signed base: %v", err)
	}
	if err := verify.Base(ctx, ro, "wso2is", base, verify.SignatureOptions{Key: otherPub, IgnoreTlog: true}); !errors.As(err, &berr) {
		t.Fatalf("base signed by another key: %v", err)
	}
	gone, _ := name.NewDigest("127.0.0.1:1/wso2/wso2is@"+base.DigestStr(), name.Insecure)
	if err := verify.Base(ctx, registry.Options{Insecure: []string{"127.0.0.1:1"}}, "wso2is", gone, opts); err == nil || errors.As(err, &berr) {
		t.Fatalf("unreachable registry: %v", err)
	}
}

// TestSignatureOptionsValidate: a key or an identity with its issuer, not both.
func TestSignatureOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o  verify.SignatureOptions
		ok bool
	}{
		{verify.SignatureOptions{Key: "k.pub"}, true},
		{verify.SignatureOptions{Identity: "a@b", Issuer: "https://i"}, true},
		{verify.SignatureOptions{IdentityRegexp: ".*", IssuerRegexp: ".*"}, true},
		{verify.SignatureOptions{}, false},
		{verify.SignatureOptions{Identity: "a@b"}, false},
		{verify.SignatureOptions{Key: "k.pub", Identity: "a@b", Issuer: "https://i"}, false},
		{verify.SignatureOptions{Identity: "a@b", IdentityRegexp: ".*", Issuer: "https://i"}, false},
	} {
		if err := tc.o.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
}

func sigTag(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + suffix)
}

// TestCosignV3Bundles: cosign v3 signs and attests into Sigstore bundles attached as
// OCI referrers by default, not into the .sig/.att tags. An image (or a base, such as
// WSO2's own, signed that way) verifies all the same; another key does not.
func TestCosignV3Bundles(t *testing.T) {
	host, ro := startRegistry(t)
	testenv.Need(t, "cosign-v3")
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)
	ctx := context.Background()
	ref := pushGood(t, host, "acme/v3bundles")

	dir := t.TempDir()
	// No transparency log or timestamp authority: an empty signing config (offline).
	sc := filepath.Join(dir, "signing-config.json")
	cosignV3(t, "signing-config", "create", "--out", sc)
	prov, err := subject().Provenance()
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := subject().SBOM()
	if err != nil {
		t.Fatal(err)
	}
	provFile, sbomFile := filepath.Join(dir, "prov.json"), filepath.Join(dir, "sbom.json")
	if err := os.WriteFile(provFile, prov, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sbomFile, sbom, 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"--key", key, "--signing-config", sc, "--allow-http-registry=true"}
	cosignV3(t, append(append([]string{"sign"}, common...), ref.String())...)
	cosignV3(t, append(append([]string{"attest", "--type", "slsaprovenance1", "--predicate", provFile}, common...), ref.String())...)
	cosignV3(t, append(append([]string{"attest", "--type", "spdxjson", "--predicate", sbomFile}, common...), ref.String())...)

	r, err := verifier(t, ro, verify.SignatureOptions{Key: pub}).Verify(ctx, ref.String())
	if err != nil {
		t.Fatalf("%v\n%+v", err, r)
	}
	if c := r.Checks[0]; !strings.Contains(c.Detail, "Sigstore bundle") {
		t.Errorf("signature found in %q", c.Detail)
	}
	r, err = verifier(t, ro, verify.SignatureOptions{Key: otherPub}).Verify(ctx, ref.String())
	var verr *verify.ViolationError
	if !errors.As(err, &verr) || status(r, verify.CheckSignature) != verify.Fail || status(r, verify.CheckAttestations) != verify.Fail {
		t.Fatalf("another key: %v\n%+v", err, r)
	}
	if err := verify.Base(ctx, ro, "wso2is", ref, verify.SignatureOptions{Key: pub, IgnoreTlog: true}); err != nil {
		t.Errorf("base signed by cosign v3: %v", err)
	}
}

func cosignV3(t *testing.T, args ...string) {
	t.Helper()
	bin, err := testenv.Bin("cosign-v3")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_PASSWORD="+signtest.Password, "COSIGN_YES=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
