package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/cosign/v2/pkg/providers"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/oauthflow"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"

	// Where keyless signing finds an identity token without being given one, in this
	// order: $SIGSTORE_ID_TOKEN, the token file /var/run/sigstore/cosign/oidc-token
	// (a Kubernetes projected token), GitHub Actions' OIDC endpoint. Cosign's other
	// providers (Google, SPIFFE, Buildkite) are left out with their dependencies.
	_ "github.com/sigstore/cosign/v2/pkg/providers/envvar"
	_ "github.com/sigstore/cosign/v2/pkg/providers/filesystem"
	_ "github.com/sigstore/cosign/v2/pkg/providers/github"
)

// tokenAudience is the audience Fulcio accepts.
const tokenAudience = "sigstore"

// certRenewBefore is how long before its expiry a Fulcio certificate is replaced:
// certificates live 10 minutes and a build may outlast one.
const certRenewBefore = 2 * time.Minute

// AmbientProvider names the identity-token provider that keyless signing would use
// without --identity-token ("github-actions", "envvar", "filesystem"), or "" when none
// is available. The CLI signs by default when one is.
func AmbientProvider(ctx context.Context) string {
	for _, p := range providers.Providers() {
		if p.Provider.Enabled(ctx) {
			return p.Name
		}
	}
	return ""
}

// keyless signs with an ephemeral key that Fulcio certifies for the OIDC identity.
type keyless struct {
	opts Options
	sv   signature.SignerVerifier
	// getToken returns a fresh identity token.
	getToken func(ctx context.Context) (string, error)
	http     *http.Client

	mu           sync.Mutex
	cert, chain  []byte
	certNotAfter time.Time
}

// newKeyless makes the ephemeral key and finds where the identity token will come
// from; the certificate itself is fetched when first needed.
func newKeyless(ctx context.Context, opts Options) (*keyless, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("keyless: generating the ephemeral key: %w", err)
	}
	sv, err := signature.LoadECDSASignerVerifier(priv, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	k := &keyless{opts: opts, sv: sv, http: &http.Client{Timeout: time.Minute}}
	switch {
	case opts.IdentityToken != "":
		tok, err := readToken(opts.IdentityToken)
		if err != nil {
			return nil, err
		}
		k.getToken = func(context.Context) (string, error) { return tok, nil }
	case AmbientProvider(ctx) != "":
		k.getToken = func(ctx context.Context) (string, error) {
			tok, err := providers.Provide(ctx, tokenAudience)
			if err != nil {
				return "", fmt.Errorf("fetching the OIDC identity token from %s: %w", AmbientProvider(ctx), err)
			}
			return tok, nil
		}
	case opts.Interactive:
		k.getToken = func(context.Context) (string, error) {
			tok, err := oauthflow.OIDConnect(opts.OIDCIssuer, opts.OIDCClientID, "", "", oauthflow.DefaultIDTokenGetter)
			if err != nil {
				return "", fmt.Errorf("logging in at %s: %w", opts.OIDCIssuer, err)
			}
			return tok.RawString, nil
		}
	default:
		return nil, errors.New("keyless signing needs an OIDC identity token: give --identity-token (or $SIGSTORE_ID_TOKEN), run in GitHub Actions with `permissions: id-token: write`, or sign with --key")
	}
	return k, nil
}

// readToken returns the content of the file tok names, or tok itself when it is no
// file but looks like a JWT.
func readToken(tok string) (string, error) {
	b, err := os.ReadFile(tok)
	switch {
	case err == nil:
		return strings.TrimSpace(string(b)), nil
	case strings.Count(tok, ".") == 2 && !strings.ContainsAny(tok, "/\\ \n"):
		return tok, nil
	}
	return "", fmt.Errorf("identity token: neither a readable file nor a JWT: %w", err)
}

// certificate returns the Fulcio certificate (PEM) and its chain, fetching a new one
// when there is none or it expires soon.
func (k *keyless) certificate(ctx context.Context) (cert, chain []byte, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cert != nil && time.Until(k.certNotAfter) > certRenewBefore {
		return k.cert, k.chain, nil
	}
	tok, err := k.getToken(ctx)
	if err != nil {
		return nil, nil, err
	}
	// The token is only parsed here, for its subject; Fulcio verifies it.
	id, err := oauthflow.OIDConnect("", "", "", "", &oauthflow.StaticTokenGetter{RawToken: tok})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the identity token: %w", err)
	}
	proof, err := k.sv.SignMessage(strings.NewReader(id.Subject), sigopts.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	pub, err := k.sv.PublicKey()
	if err != nil {
		return nil, nil, err
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, nil, err
	}
	cert, chain, err = k.fulcioCert(ctx, tok, pubPEM, proof)
	if err != nil {
		return nil, nil, fmt.Errorf("getting a certificate from Fulcio %s for %s: %w", k.opts.FulcioURL, id.Subject, err)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(cert)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("fulcio %s returned no certificate: %v", k.opts.FulcioURL, err)
	}
	k.cert, k.chain, k.certNotAfter = cert, chain, certs[0].NotAfter
	fmt.Fprintf(k.opts.Log, "keyless: certificate for %s from %s, valid until %s\n", id.Subject, k.opts.FulcioURL, k.certNotAfter.UTC().Format(time.RFC3339))
	return cert, chain, nil
}

// fulcioCert asks Fulcio's /api/v1/signingCert (the API cosign v2 uses) to certify
// pubPEM for the token's identity; proof is the token's subject signed with the key.
func (k *keyless) fulcioCert(ctx context.Context, token string, pubPEM, proof []byte) (cert, chain []byte, err error) {
	u, err := url.JoinPath(k.opts.FulcioURL, "/api/v1/signingCert")
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(map[string]any{
		"publicKey":          map[string]any{"content": pubPEM},
		"signedEmailAddress": proof,
	})
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/pem-certificate-chain")
	if k.opts.UserAgent != "" {
		req.Header.Set("User-Agent", k.opts.UserAgent)
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusCreated {
		return nil, nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	if sct := resp.Header.Get("SCT"); sct != "" {
		if _, err := base64.StdEncoding.DecodeString(sct); err != nil {
			return nil, nil, fmt.Errorf("malformed SCT header: %w", err)
		}
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, nil, errors.New("the response holds no PEM certificate")
	}
	return pem.EncodeToMemory(block), rest, nil
}
