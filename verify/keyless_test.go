package verify_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// TestKeylessRoundTrip signs keyless the way a GitHub Actions job does (the job's OIDC
// token, a Fulcio certificate for the workflow identity; here a Fulcio stand-in with its
// own CA, no transparency log) and verifies by certificate identity and issuer: the
// right identity passes, another identity or issuer fails. The stock cosign agrees.
func TestKeylessRoundTrip(t *testing.T) {
	for _, v := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	const issuer = "https://token.actions.githubusercontent.com"
	const identity = "https://github.com/acme/wso2-images/.github/workflows/build.yml@refs/heads/main"
	tok := signtest.Token(t, issuer, "repo:acme/wso2-images:ref:refs/heads/main")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", signtest.GitHubOIDC(t, "runner-token", tok))
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-token")
	fulcio := signtest.StartFulcio(t, identity, issuer)

	host, ro := memRegistry(t)
	ref := signtest.Push(t, host+"/acme/keyless:1", signtest.Image(t, signtest.Config(), signtest.Files()))
	ctx := context.Background()
	s, err := sign.New(ctx, sign.Options{FulcioURL: fulcio.URL, Registry: ro})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SignBuild(ctx, ref, subject()); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		opts verify.SignatureOptions
		ok   bool
	}{
		{"identity and issuer", verify.SignatureOptions{Identity: identity, Issuer: issuer}, true},
		{"regexps", verify.SignatureOptions{IdentityRegexp: `^https://github\.com/acme/`, IssuerRegexp: `githubusercontent\.com$`}, true},
		{"another identity", verify.SignatureOptions{Identity: "https://github.com/evil/fork/.github/workflows/build.yml@refs/heads/main", Issuer: issuer}, false},
		{"another issuer", verify.SignatureOptions{Identity: identity, Issuer: "https://accounts.google.com"}, false},
		{"a key instead", verify.SignatureOptions{Key: keyFile(t)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			so := tc.opts
			so.CARoots, so.IgnoreTlog, so.IgnoreSCT = fulcio.CAFile, true, true
			v, err := verify.New(ctx, verify.Options{Registry: ro, Signature: so})
			if err != nil {
				t.Fatal(err)
			}
			r, err := v.Verify(ctx, ref.String())
			var verr *verify.ViolationError
			if tc.ok && err != nil || !tc.ok && !errors.As(err, &verr) {
				t.Fatalf("%v\n%+v", err, r)
			}
			if tc.ok && (status(r, verify.CheckSignature) != verify.Pass || status(r, verify.CheckAttestations) != verify.Pass) {
				t.Errorf("%+v", r.Checks)
			}
		})
	}

	t.Run("cosign-v2", func(t *testing.T) {
		testenv.Need(t, "cosign-v2")
		bin, _ := testenv.Bin("cosign-v2")
		for _, id := range []string{identity, "https://github.com/evil/fork/.github/workflows/build.yml@refs/heads/main"} {
			cmd := exec.Command(bin, "verify", "--certificate-identity", id, "--certificate-oidc-issuer", issuer,
				"--ca-roots", fulcio.CAFile, "--insecure-ignore-sct=true", "--insecure-ignore-tlog=true", "--allow-http-registry=true", ref.String())
			home := t.TempDir()
			cmd.Env = append(os.Environ(), "HOME="+home, "TUF_ROOT="+filepath.Join(home, "tuf"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if (id == identity) != (err == nil) {
				t.Errorf("cosign verify --certificate-identity %s: %v\n%s", id, err, out.String())
			}
		}
	})
}

func keyFile(t *testing.T) string {
	_, pub := signtest.Keys(t)
	return pub
}
