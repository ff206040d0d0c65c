package verify

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/sign"
)

// SignatureOptions say whose signature an image must carry: a key, or (keyless) a
// certificate identity and issuer.
type SignatureOptions struct {
	// Key is the public key: a PEM file, env://VAR, or a KMS URI.
	Key string
	// Identity (exact) or IdentityRegexp match the keyless certificate's subject (an
	// email, or a URI such as a GitHub workflow
	// https://github.com/ORG/REPO/.github/workflows/build.yml@refs/heads/main).
	Identity, IdentityRegexp string
	// Issuer (exact) or IssuerRegexp match the OIDC issuer the certificate names
	// (https://token.actions.githubusercontent.com for GitHub Actions).
	Issuer, IssuerRegexp string
	// CARoots is a PEM file of the CA certificates (roots and intermediates) keyless
	// certificates must chain to, for a private Fulcio; default the Sigstore
	// public-good roots, fetched and cached through TUF.
	CARoots string
	// IgnoreTlog skips the transparency-log proof, for signatures made with
	// --tlog-upload=false (private registries, offline use).
	IgnoreTlog bool
	// IgnoreSCT skips the certificate-transparency proof of keyless certificates (a
	// private Fulcio without a CT log).
	IgnoreSCT bool
	// RekorURL is the transparency log looked up for signatures that carry no proof;
	// default sign.DefaultRekorURL.
	RekorURL string
}

// Keyless reports whether the options ask for a keyless (identity) signature.
func (o SignatureOptions) Keyless() bool { return o.Key == "" }

// Validate checks that exactly one of a key or an identity with its issuer is given.
func (o SignatureOptions) Validate() error {
	id := o.Identity != "" || o.IdentityRegexp != ""
	iss := o.Issuer != "" || o.IssuerRegexp != ""
	switch {
	case o.Key != "" && (id || iss):
		return errors.New("give a key or a certificate identity, not both")
	case o.Key == "" && !id && !iss:
		return errors.New("no key and no certificate identity: give --key, or --certificate-identity and --certificate-oidc-issuer")
	case o.Key == "" && (!id || !iss):
		return errors.New("keyless verification needs both a certificate identity and its OIDC issuer (--certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp])")
	case o.Identity != "" && o.IdentityRegexp != "", o.Issuer != "" && o.IssuerRegexp != "":
		return errors.New("give the exact identity (issuer) or its regexp, not both")
	}
	return nil
}

// expected says what a signature is checked against, for reports.
func (o SignatureOptions) expected() string {
	if o.Key != "" {
		return "key " + o.Key
	}
	id := firstNonEmpty(o.Identity, "~"+o.IdentityRegexp)
	iss := firstNonEmpty(o.Issuer, "~"+o.IssuerRegexp)
	return "identity " + id + " from " + iss
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sigChecker holds what verifying signatures needs: the key, or the trust roots.
type sigChecker struct {
	opts SignatureOptions
	base cosign.CheckOpts
}

func newSigChecker(ctx context.Context, o SignatureOptions) (*sigChecker, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.RekorURL == "" {
		o.RekorURL = sign.DefaultRekorURL
	}
	c := &sigChecker{opts: o}
	co := &c.base
	co.IgnoreTlog, co.IgnoreSCT = o.IgnoreTlog, o.IgnoreSCT
	if o.Key != "" {
		v, err := sign.LoadPublicKey(ctx, o.Key)
		if err != nil {
			return nil, err
		}
		co.SigVerifier = v
	} else {
		co.Identities = []cosign.Identity{{Subject: o.Identity, SubjectRegExp: o.IdentityRegexp, Issuer: o.Issuer, IssuerRegExp: o.IssuerRegexp}}
	}
	switch {
	case o.Key != "" && o.IgnoreTlog:
		// The key is all there is to check.
	case o.CARoots != "":
		roots, inter, err := loadCARoots(o.CARoots)
		if err != nil {
			return nil, err
		}
		co.RootCerts, co.IntermediateCerts = roots, inter
		if !o.IgnoreTlog {
			// SIGSTORE_REKOR_PUBLIC_KEY names a private Rekor's key.
			if co.RekorPubKeys, err = cosign.GetRekorPubs(ctx); err != nil {
				return nil, fmt.Errorf("getting the transparency log's public keys: %w", err)
			}
		}
		if !o.IgnoreSCT {
			// SIGSTORE_CT_LOG_PUBLIC_KEY_FILE names a private CT log's key.
			if co.CTLogPubKeys, err = cosign.GetCTLogPubs(ctx); err != nil {
				return nil, fmt.Errorf("getting the certificate transparency log's public keys: %w", err)
			}
		}
	default:
		tm, err := cosign.TrustedRoot()
		if err != nil {
			return nil, fmt.Errorf("getting the Sigstore trust root through TUF (offline? signatures made with --tlog-upload=false verify with --insecure-ignore-tlog): %w", err)
		}
		co.TrustedMaterial = tm
	}
	if !o.IgnoreTlog {
		rc, err := rekorclient.GetRekorClient(o.RekorURL)
		if err != nil {
			return nil, fmt.Errorf("rekor %s: %w", o.RekorURL, err)
		}
		co.RekorClient = rc
	}
	return c, nil
}

// loadCARoots splits a PEM bundle into self-signed roots and intermediates.
func loadCARoots(file string) (roots, intermediates *x509.CertPool, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, fmt.Errorf("CA roots: %w", err)
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("CA roots %s: no PEM certificates: %v", file, err)
	}
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	for _, c := range certs {
		if c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
		} else {
			intermediates.AddCert(c)
		}
	}
	return roots, intermediates, nil
}

// checkOpts is a copy of the base options for one call.
func (c *sigChecker) checkOpts(ctx context.Context, reg registry.Options) *cosign.CheckOpts {
	co := c.base
	co.RegistryClientOpts = []ociremote.Option{ociremote.WithRemoteOptions(reg.Remote(ctx)...)}
	return &co
}

// signature checks that ref carries a signature by the expected key or identity whose
// payload names ref's own digest.
func (c *sigChecker) signature(ctx context.Context, ref name.Digest, reg registry.Options) (Check, error) {
	ch := Check{ID: CheckSignature, Title: "signed by the expected key or identity", Rule: ruleSignature}
	co := c.checkOpts(ctx, reg)
	// Without a claim verifier cosign accepts a signature whose payload names another
	// image: a signature copied from one digest to another must fail.
	co.ClaimVerifier = cosign.SimpleClaimVerifier
	sigs, _, err := cosign.VerifyImageSignatures(ctx, ref, co)
	if err != nil && isOperational(err) {
		return ch, err
	}
	layout := "cosign signature tag " + registry.CosignTag(ref.Context(), ref.DigestStr(), registry.SigSuffix).TagStr()
	if err != nil {
		// No valid signature in the tag layout: cosign v3 signs into Sigstore bundles
		// attached as OCI referrers by default, so look there too.
		byType, berr := c.bundles(ctx, ref, reg)
		if berr != nil && isOperational(berr) {
			return ch, berr
		}
		if n := len(byType[ctypes.CosignSignPredicateType]); n > 0 {
			sigs, err, layout = byType[ctypes.CosignSignPredicateType], nil, "Sigstore bundle (OCI referrer)"
		} else if berr != nil && !errors.Is(berr, errNoBundles) {
			err = fmt.Errorf("%w; Sigstore bundles: %w", err, berr)
		}
	}
	if err != nil {
		ch.Status, ch.Detail = Fail, fmt.Sprintf("no valid signature by %s for %s: %s", c.opts.expected(), ref.DigestStr(), oneLine(err))
		return ch, nil
	}
	ch.Status = Pass
	ch.Detail = fmt.Sprintf("%d signature(s) by %s over %s, in the %s", len(sigs), c.opts.expected(), ref.DigestStr(), layout)
	if c.opts.IgnoreTlog {
		ch.Detail += "; transparency log not checked (--insecure-ignore-tlog)"
	}
	for _, s := range sigs {
		if who := signerOf(s); who != "" {
			ch.Findings = append(ch.Findings, who)
		}
	}
	return ch, nil
}

// signerOf names a keyless signature's certificate identity.
func signerOf(s oci.Signature) string {
	cert, err := s.Cert()
	if err != nil || cert == nil {
		return ""
	}
	ids := cryptoutils.GetSubjectAlternateNames(cert)
	ce := cosign.CertExtensions{Cert: cert}
	return "certificate " + strings.Join(ids, ", ") + " issued for " + ce.GetIssuer()
}

// attestations checks that every required predicate type has an attestation signed by
// the expected key or identity about ref's digest.
func (c *sigChecker) attestations(ctx context.Context, ref name.Digest, reg registry.Options, required []string) (Check, error) {
	ch := Check{ID: CheckAttestations, Title: "required attestations are signed", Rule: ruleAttestation}
	if len(required) == 0 {
		ch.Status, ch.Detail = Skip, "the policy requires no attestations"
		return ch, nil
	}
	co := c.checkOpts(ctx, reg)
	co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, ref, co)
	if err != nil && isOperational(err) {
		return ch, err
	}
	have := map[string]bool{}
	for _, a := range atts {
		if pt, err := predicateType(a); err == nil {
			have[pt] = true
		}
	}
	if !hasAll(have, required) {
		// cosign v3 attaches attestations as Sigstore bundles (OCI referrers).
		byType, berr := c.bundles(ctx, ref, reg)
		if berr != nil && isOperational(berr) {
			return ch, berr
		}
		for pt := range byType {
			have[pt] = true
		}
	}
	var missing []string
	for _, pt := range required {
		if have[pt] {
			ch.Findings = append(ch.Findings, pt)
		} else {
			missing = append(missing, pt)
		}
	}
	if len(missing) > 0 {
		ch.Status = Fail
		ch.Detail = fmt.Sprintf("no attestation signed by %s about %s for %s", c.opts.expected(), ref.DigestStr(), strings.Join(missing, ", "))
		if err != nil {
			ch.Detail += ": " + oneLine(err)
		}
		return ch, nil
	}
	ch.Status = Pass
	ch.Detail = fmt.Sprintf("%d required attestation(s) signed by %s", len(required), c.opts.expected())
	return ch, nil
}

func hasAll(have map[string]bool, want []string) bool {
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// errNoBundles: the image has no Sigstore bundles attached.
var errNoBundles = errors.New("no Sigstore bundles")

// bundles verifies the Sigstore bundles attached to ref as OCI referrers (cosign v3's
// default for signatures and attestations) and returns the verified ones by predicate
// type; a signature is the type ctypes.CosignSignPredicateType. sigstore-go checks
// that each bundle's statement is about ref's digest.
func (c *sigChecker) bundles(ctx context.Context, ref name.Digest, reg registry.Options) (map[string][]oci.Signature, error) {
	co := c.checkOpts(ctx, reg)
	if _, _, err := cosign.GetBundles(ctx, ref, co); err != nil {
		var none *cosign.ErrNoMatchingAttestations
		if errors.As(err, &none) {
			return nil, errNoBundles
		}
		var terr *transport.Error
		if errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound || terr.StatusCode == http.StatusBadRequest) {
			return nil, errNoBundles // a registry without the referrers API
		}
		return nil, err
	}
	co.NewBundleFormat = true
	co.ClaimVerifier = nil
	switch {
	case co.TrustedMaterial != nil:
	case co.SigVerifier != nil:
		// A key and no transparency log: the key is all the trust there is.
		co.TrustedMaterial = &root.BaseTrustedMaterial{}
	default:
		return nil, errors.New("bundles signed keyless verify against the Sigstore trust root, not --ca-roots")
	}
	atts, _, err := cosign.VerifyImageAttestations(ctx, ref, co)
	if err != nil {
		return nil, err
	}
	out := map[string][]oci.Signature{}
	for _, a := range atts {
		if pt, err := predicateType(a); err == nil {
			out[pt] = append(out[pt], a)
		}
	}
	return out, nil
}

// predicateType reads the predicate type of a verified attestation's statement.
func predicateType(s oci.Signature) (string, error) {
	p, err := s.Payload()
	if err != nil {
		return "", err
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(p, &env); err != nil {
		return "", err
	}
	st, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return "", err
	}
	var stmt struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(st, &stmt); err != nil {
		return "", err
	}
	return stmt.PredicateType, nil
}

// oneLine shortens cosign's multi-line errors.
func oneLine(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	const max = 400
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// BaseError is a base image whose signature did not verify before a build. The CLI
// maps it to exit code 3 (an input failed verification).
type BaseError struct {
	// Profile names the profile, when the caller gives it.
	Profile string
	// Ref is the base by digest.
	Ref string
	// Expected is the key or identity the signature had to come from.
	Expected string
	// Reason says what was wrong.
	Reason string
	Err    error
}

func (e *BaseError) Error() string {
	where := "base " + e.Ref
	if e.Profile != "" {
		where = fmt.Sprintf("profile %q: %s", e.Profile, where)
	}
	return fmt.Sprintf("%s: signature verification failed: expected a signature by %s, found %s", where, e.Expected, e.Reason)
}

func (e *BaseError) Unwrap() error { return e.Err }

// Base verifies the cosign signature of a base image before anything is built on it,
// by key or keyless identity (opts). ref must be the digest the build pins. A missing
// or bad signature is a *BaseError; a registry that cannot be read is another error.
func Base(ctx context.Context, reg registry.Options, profile string, ref name.Digest, opts SignatureOptions) error {
	c, err := newSigChecker(ctx, opts)
	if err != nil {
		return fmt.Errorf("profile %q: base %s: %w", profile, ref, err)
	}
	ch, err := c.signature(ctx, ref, reg)
	if err != nil {
		return fmt.Errorf("profile %q: verifying the signature of base %s: %w", profile, ref, err)
	}
	if ch.Status != Pass {
		reason := strings.TrimPrefix(ch.Detail, fmt.Sprintf("no valid signature by %s for %s: ", opts.expected(), ref.DigestStr()))
		return &BaseError{Profile: profile, Ref: ref.String(), Expected: opts.expected(), Reason: "none valid (" + reason + ")"}
	}
	return nil
}
