package sign_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/sign"
)

// clearAmbient removes the identity-token sources of the environment for one test.
func clearAmbient(t *testing.T) {
	t.Helper()
	for _, v := range []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN"} {
		t.Setenv(v, "") // restores the variable after the test …
		os.Unsetenv(v)  // … which must not see it at all (set-but-empty counts as set)
	}
	if _, err := os.Stat("/var/run/sigstore/cosign/oidc-token"); err == nil {
		t.Skip("/var/run/sigstore/cosign/oidc-token exists on this machine")
	}
}

// TestAmbientProvider: in GitHub Actions (the runner sets ACTIONS_ID_TOKEN_REQUEST_URL
// and _TOKEN when the job has `id-token: write`) keyless signing takes its token from
// there; SIGSTORE_ID_TOKEN comes first; with neither there is none.
func TestAmbientProvider(t *testing.T) {
	clearAmbient(t)
	ctx := context.Background()
	if p := sign.AmbientProvider(ctx); p != "" {
		t.Fatalf("provider %q with a clean environment", p)
	}
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-token")
	if p := sign.AmbientProvider(ctx); p != "github-actions" {
		t.Errorf("in GitHub Actions: provider %q, want github-actions", p)
	}
	t.Setenv("SIGSTORE_ID_TOKEN", "x.y.z")
	if p := sign.AmbientProvider(ctx); p != "envvar" {
		t.Errorf("with SIGSTORE_ID_TOKEN: provider %q, want envvar", p)
	}
}

// TestKeylessNeedsToken: keyless signing without a token source fails at New, before
// anything is built, and says where a token can come from.
func TestKeylessNeedsToken(t *testing.T) {
	clearAmbient(t)
	_, err := sign.New(context.Background(), sign.Options{TlogUpload: true})
	if err == nil || !strings.Contains(err.Error(), "--identity-token") || !strings.Contains(err.Error(), "id-token: write") {
		t.Fatalf("error %v", err)
	}
}

// TestKeylessGitHubActionsToken: in GitHub Actions the job's token is fetched (with the
// runner's request token, audience sigstore) and sent to Fulcio; the certificate binds
// the workflow identity to the ephemeral key, which signs.
func TestKeylessGitHubActionsToken(t *testing.T) {
	clearAmbient(t)
	const issuer = "https://token.actions.githubusercontent.com"
	const identity = "https://github.com/acme/wso2-images/.github/workflows/build.yml@refs/heads/main"
	tok := signtest.Token(t, issuer, "repo:acme/wso2-images:ref:refs/heads/main")
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_URL", signtest.GitHubOIDC(t, "runner-token", tok))
	t.Setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runner-token")
	fulcio := signtest.StartFulcio(t, identity, issuer)

	s, err := sign.New(context.Background(), sign.Options{FulcioURL: fulcio.URL})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Keyless() || !strings.Contains(s.String(), fulcio.URL) {
		t.Errorf("signer %s", s)
	}
	// Nothing is fetched until the first signature.
	if n := len(fulcio.Tokens()); n != 0 {
		t.Fatalf("%d Fulcio calls before signing", n)
	}
	host, ro := memRegistry(t)
	s, err = sign.New(context.Background(), sign.Options{FulcioURL: fulcio.URL, Registry: ro})
	if err != nil {
		t.Fatal(err)
	}
	ref := pushRandom(t, host+"/acme/keyless:1")
	if err := s.SignBuild(context.Background(), ref, subject()); err != nil {
		t.Fatal(err)
	}
	// One certificate serves the signature and both attestations.
	if got := fulcio.Tokens(); len(got) != 1 || got[0] != tok {
		t.Errorf("Fulcio got tokens %v, want the job's token once", got)
	}
}

// TestIdentityTokenFile: --identity-token takes a JWT or a file holding one.
func TestIdentityTokenFile(t *testing.T) {
	clearAmbient(t)
	const issuer = "https://accounts.example.com"
	tok := signtest.Token(t, issuer, "builder@example.com")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fulcio := signtest.StartFulcio(t, "builder@example.com", issuer)
	host, ro := memRegistry(t)
	ref := pushRandom(t, host+"/acme/tokenfile:1")
	for _, given := range []string{tok, file} {
		s, err := sign.New(context.Background(), sign.Options{FulcioURL: fulcio.URL, IdentityToken: given, Registry: ro})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Sign(context.Background(), ref, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := fulcio.Tokens(); len(got) != 2 || got[0] != tok || got[1] != tok {
		t.Errorf("Fulcio got %d tokens", len(got))
	}
	if _, err := sign.New(context.Background(), sign.Options{IdentityToken: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing token file was accepted")
	}
}
