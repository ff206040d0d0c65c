package sign

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/wso2img/wso2img/internal/registry"
)

// Signed reports whether ref already carries a signature by this Signer that verifies
// and whose payload names ref's digest: made with its key, or — keyless — by a
// certificate for the same identity and issuer from the same Fulcio roots. Only then
// may signing be skipped: a signature by another key (one rotated out, say) does not
// count, nor does a signature copied from another digest.
//
// A keyless certificate is checked at the current time, without the transparency log:
// once it has expired (10 minutes) the image is signed again, which is harmless.
func (s *Signer) Signed(ctx context.Context, ref name.Digest) (bool, error) {
	co, err := s.checkOpts(ctx)
	if err != nil {
		return false, err
	}
	co.ClaimVerifier = cosign.SimpleClaimVerifier
	sigs, _, err := cosign.VerifyImageSignatures(ctx, ref, co)
	return len(sigs) > 0, noneIsFalse(err, "signature of "+ref.String())
}

// Attested reports, like Signed, which predicate types ref already carries an
// attestation of by this Signer about ref's digest.
func (s *Signer) Attested(ctx context.Context, ref name.Digest) (map[string]bool, error) {
	co, err := s.checkOpts(ctx)
	if err != nil {
		return nil, err
	}
	co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, ref, co)
	if err := noneIsFalse(err, "attestations of "+ref.String()); err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, a := range atts {
		if pt, err := predicateTypeOf(a); err == nil {
			have[pt] = true
		}
	}
	return have, nil
}

// checkOpts verifies with the Signer's own key, or its certificate's identity, issuer
// and chain.
func (s *Signer) checkOpts(ctx context.Context) (*cosign.CheckOpts, error) {
	co := &cosign.CheckOpts{
		IgnoreTlog:         true,
		IgnoreSCT:          true,
		RegistryClientOpts: []ociremote.Option{ociremote.WithRemoteOptions(s.opts.Registry.Remote(ctx)...)},
	}
	if s.keyless == nil {
		co.SigVerifier = s.sv
		return co, nil
	}
	certPEM, chainPEM, err := s.keyless.certificate(ctx)
	if err != nil {
		return nil, err
	}
	certs, err := cryptoutils.UnmarshalCertificatesFromPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return nil, fmt.Errorf("reading this signer's certificate: %v", err)
	}
	chain, err := cryptoutils.UnmarshalCertificatesFromPEM(chainPEM)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("reading this signer's certificate chain: %v", err)
	}
	co.RootCerts, co.IntermediateCerts = x509.NewCertPool(), x509.NewCertPool()
	for _, c := range chain {
		if isSelfSigned(c) {
			co.RootCerts.AddCert(c)
		} else {
			co.IntermediateCerts.AddCert(c)
		}
	}
	id, issuer := identityOf(certs[0])
	if id == "" || issuer == "" {
		return nil, errors.New("this signer's certificate names no identity or issuer")
	}
	co.Identities = []cosign.Identity{{Subject: id, Issuer: issuer}}
	return co, nil
}

func isSelfSigned(c *x509.Certificate) bool {
	return c.CheckSignatureFrom(c) == nil
}

// noneIsFalse turns cosign's "nothing (valid) there" into no error: what is there, if
// anything, was not made by this Signer. Registry failures stay errors.
func noneIsFalse(err error, what string) error {
	var noSigs *cosign.ErrNoSignaturesFound
	var noMatch *cosign.ErrNoMatchingSignatures
	var noAtts *cosign.ErrNoMatchingAttestations
	var notFound *cosign.ErrImageTagNotFound
	switch {
	case err == nil, errors.As(err, &noSigs), errors.As(err, &noMatch), errors.As(err, &noAtts),
		errors.As(err, &notFound), registry.IsNotFound(err):
		return nil
	}
	return fmt.Errorf("looking for the %s: %w", what, err)
}
