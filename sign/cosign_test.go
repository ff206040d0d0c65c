package sign_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/sign"
)

// startRegistry starts a real registry for one test.
func startRegistry(t *testing.T) (*testenv.Registry, registry.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg, registry.Options{Insecure: []string{reg.Host}}
}

func newSigner(t *testing.T, key string, ro registry.Options) *sign.Signer {
	t.Helper()
	s, err := sign.New(context.Background(), sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: ro})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// subject is what a build of the IS 5.8.0 stand-in would record.
func subject() *sign.Subject {
	return &sign.Subject{
		Profile: "wso2is-mysql", ProfileFile: "examples/wso2is-mysql.yaml",
		ProfileDigest: "sha256:2222222222222222222222222222222222222222222222222222222222222222",
		Product:       "wso2is", Version: "5.8.0", WUM: 1565855673150,
		Tags:    []string{"5.8.0.1565855673150.1", "5.8.0"},
		BaseRef: "docker.wso2.com/wso2is:5.8.0.1565855673150", BaseDigest: signtest.BaseDigest,
		Platforms: []string{"linux/amd64"}, User: "802:802",
		Inputs: []sign.SubjectInput{{
			Source: "https://repo1.maven.org/maven2/mysql/mysql-connector-java/8.0.17/mysql-connector-java-8.0.17.jar",
			Digest: "sha256:3333333333333333333333333333333333333333333333333333333333333333",
			Dest:   "/home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql-connector-java-8.0.17.jar",
			Signer: "A4A9406876FCBD3C456770C88C718D3B5072E1F5",
			Files: []sign.SubjectFile{{
				Path:   "/home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql-connector-java-8.0.17.jar",
				SHA256: "3333333333333333333333333333333333333333333333333333333333333333", Size: 2321813,
			}},
		}, {
			Source: "conf/deployment.toml", Digest: "sha256:4444444444444444444444444444444444444444444444444444444444444444",
			Dest: "/home/wso2carbon/wso2is-5.8.0/repository/conf/deployment.toml",
			Files: []sign.SubjectFile{{Path: "/home/wso2carbon/wso2is-5.8.0/repository/conf/deployment.toml",
				SHA256: "4444444444444444444444444444444444444444444444444444444444444444", Size: 1200}},
		}},
		BuiltAt:  time.Date(2019, 8, 15, 7, 54, 33, 0, time.UTC),
		Source:   "https://github.com/acme/wso2-images",
		Revision: "0123456789abcdef0123456789abcdef01234567",
	}
}

// TestStockCosignVerifies signs and attests with the library, then has the stock cosign
// v2 and v3 CLIs verify the signature and both attestations with the right key, and
// reject them with another key.
func TestStockCosignVerifies(t *testing.T) {
	testenv.Need(t, "registry", "cosign-v2", "cosign-v3")
	reg, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	_, otherPub := signtest.Keys(t)

	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := signtest.Push(t, reg.Host+"/acme/wso2is:5.8.0", img)
	s := newSigner(t, key, ro)
	if err := s.SignBuild(context.Background(), ref, subject()); err != nil {
		t.Fatal(err)
	}

	// Where cosign looks by default: the .sig and .att tags next to the image, and the
	// image itself untouched (not turned into an index).
	hex := strings.TrimPrefix(ref.DigestStr(), "sha256:")
	for _, suffix := range []string{".sig", ".att"} {
		tag := ref.Context().Tag("sha256-" + hex + suffix)
		if _, err := remote.Head(tag); err != nil {
			t.Errorf("%s: %v", tag, err)
		}
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType.IsIndex() || desc.Digest.String() != ref.DigestStr() {
		t.Errorf("the image became %s %s", desc.MediaType, desc.Digest)
	}

	for _, bin := range []string{"cosign-v2", "cosign-v3"} {
		t.Run(bin, func(t *testing.T) {
			out, err := signtest.Cosign(t, bin, append([]string{"verify", "--key", pub}, append(signtest.Offline, ref.String())...)...)
			if err != nil {
				t.Fatalf("%s verify --key: %v\n%s", bin, err, out)
			}
			if !strings.Contains(out, `"io.wso2img.product":"wso2is"`) {
				t.Errorf("%s verify printed no annotations:\n%s", bin, out)
			}
			for typ, want := range map[string]string{"slsaprovenance1": sign.PredicateSLSAProvenance, "spdxjson": sign.PredicateSPDX} {
				out, err := signtest.Cosign(t, bin, append([]string{"verify-attestation", "--key", pub, "--type", typ}, append(signtest.Offline, ref.String())...)...)
				if err != nil {
					t.Fatalf("%s verify-attestation --type %s: %v\n%s", bin, typ, err, out)
				}
				if got := predicateTypes(out); !slices.Contains(got, want) {
					t.Errorf("%s verify-attestation --type %s printed statements of %v, want %s", bin, typ, got, want)
				}
			}
			out, err = signtest.Cosign(t, bin, append([]string{"verify", "--key", otherPub}, append(signtest.Offline, ref.String())...)...)
			if err == nil {
				t.Fatalf("%s verify accepted the signature with another key:\n%s", bin, out)
			}
			out, err = signtest.Cosign(t, bin, append([]string{"verify-attestation", "--key", otherPub, "--type", "slsaprovenance1"}, append(signtest.Offline, ref.String())...)...)
			if err == nil {
				t.Fatalf("%s verify-attestation accepted the provenance with another key:\n%s", bin, out)
			}
		})
	}
}

// predicateTypes reads the predicate types of the DSSE envelopes that cosign
// verify-attestation prints, one JSON document a line.
func predicateTypes(out string) []string {
	var types []string
	for _, line := range strings.Split(out, "\n") {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal([]byte(line), &env) != nil || env.Payload == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var st struct {
			PredicateType string `json:"predicateType"`
		}
		if json.Unmarshal(raw, &st) == nil {
			types = append(types, st.PredicateType)
		}
	}
	return types
}

// TestSignIndex signs a multi-platform index by its digest; the stock cosign verifies it.
func TestSignIndex(t *testing.T) {
	testenv.Need(t, "registry", "cosign-v2")
	reg, ro := startRegistry(t)
	key, pub := signtest.Keys(t)
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := signtest.Push(t, reg.Host+"/acme/multi:1", idx)
	s := newSigner(t, key, ro)
	if err := s.Sign(context.Background(), ref, map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	out, err := signtest.Cosign(t, "cosign-v2", append([]string{"verify", "--key", pub}, append(signtest.Offline, ref.String())...)...)
	if err != nil {
		t.Fatalf("cosign verify of the index: %v\n%s", err, out)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if desc.MediaType != types.OCIImageIndex && desc.MediaType != types.DockerManifestList {
		t.Errorf("index is now %s", desc.MediaType)
	}
}

// TestSignTwice: signing the same digest again with the same key and annotations is a
// no-op (cosign's duplicate detection finds the first signature valid for the same
// payload); attesting the same predicate type again replaces the attestation instead of
// piling them up.
func TestSignTwice(t *testing.T) {
	testenv.Need(t, "registry")
	reg, ro := startRegistry(t)
	key, _ := signtest.Keys(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := signtest.Push(t, reg.Host+"/acme/twice:1", img)
	s := newSigner(t, key, ro)
	ctx := context.Background()
	for range 2 {
		if err := s.SignBuild(ctx, ref, subject()); err != nil {
			t.Fatal(err)
		}
	}
	hex := strings.TrimPrefix(ref.DigestStr(), "sha256:")
	count := func(suffix string) int {
		img, err := remote.Image(ref.Context().Tag("sha256-" + hex + suffix))
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		return len(ls)
	}
	if n := count(".sig"); n != 1 {
		t.Errorf("%d signatures, want 1", n)
	}
	if n := count(".att"); n != 2 {
		t.Errorf("%d attestations, want 2 (one provenance, one SBOM)", n)
	}
}

// TestAttestationStatement checks the in-toto statement: subject is the image digest,
// predicate as given.
func TestAttestationStatement(t *testing.T) {
	testenv.Need(t, "registry")
	reg, ro := startRegistry(t)
	key, _ := signtest.Keys(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := signtest.Push(t, reg.Host+"/acme/stmt:1", img)
	s := newSigner(t, key, ro)
	if err := s.Attest(context.Background(), ref, "https://example.com/p/v1", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Attest(context.Background(), ref, "https://example.com/p/v1", []byte(`not json`)); err == nil {
		t.Error("a predicate that is not JSON was attested")
	}
	hex := strings.TrimPrefix(ref.DigestStr(), "sha256:")
	att, err := remote.Image(ref.Context().Tag("sha256-" + hex + ".att"))
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := att.Layers()
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     string `json:"payload"`
		Signatures  []any  `json:"signatures"`
	}
	if err := json.NewDecoder(rc).Decode(&env); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(env.Payload)
	var st struct {
		Type    string `json:"_type"`
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string         `json:"predicateType"`
		Predicate     map[string]int `json:"predicate"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != "application/vnd.in-toto+json" || len(env.Signatures) != 1 || st.Type != sign.StatementType ||
		len(st.Subject) != 1 || st.Subject[0].Name != ref.Context().Name() || st.Subject[0].Digest["sha256"] != hex ||
		st.PredicateType != "https://example.com/p/v1" || st.Predicate["x"] != 1 {
		t.Errorf("envelope %+v, statement %+v", env, st)
	}
}
