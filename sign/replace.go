package sign

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
)

// replaceOp drops this signer's attestations of one predicate type when a new one is
// attached, like cosign's `attest --replace` but silently (cosign's prints to stderr),
// and keeps other signers' — those of a key rotated out, say, which verifiers that
// still pin it need.
type replaceOp struct {
	predicateType string
	mine          func(oci.Signature) bool
}

func (r replaceOp) Replace(existing oci.Signatures, att oci.Signature) (oci.Signatures, error) {
	all, err := existing.Get()
	if err != nil {
		return nil, err
	}
	kept := []oci.Signature{att}
	for _, s := range all {
		// What cannot be read is not ours to drop.
		if pt, err := predicateTypeOf(s); err != nil || pt != r.predicateType || !r.mine(s) {
			kept = append(kept, s)
		}
	}
	return keptSignatures{existing, kept}, nil
}

type keptSignatures struct {
	oci.Signatures
	list []oci.Signature
}

func (k keptSignatures) Get() ([]oci.Signature, error) { return k.list, nil }

// predicateTypeOf reads the predicate type of the in-toto statement in an attestation's
// DSSE envelope.
func predicateTypeOf(s oci.Signature) (string, error) {
	p, err := s.Payload()
	if err != nil {
		return "", fmt.Errorf("reading an attestation: %w", err)
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(p, &env); err != nil {
		return "", fmt.Errorf("reading an attestation: not a DSSE envelope: %w", err)
	}
	st, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return "", fmt.Errorf("reading an attestation: %w", err)
	}
	var stmt struct {
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(st, &stmt); err != nil {
		return "", fmt.Errorf("reading an attestation: not an in-toto statement: %w", err)
	}
	return stmt.PredicateType, nil
}

// mine reports whether an attestation was made by this Signer: its key verifies the
// DSSE envelope, or — keyless — its certificate names this Signer's identity and issuer.
func (s *Signer) mine(certPEM []byte) func(oci.Signature) bool {
	var id, issuer string
	if certs, err := cryptoutils.UnmarshalCertificatesFromPEM(certPEM); err == nil && len(certs) > 0 {
		id, issuer = identityOf(certs[0])
	}
	return func(att oci.Signature) bool {
		if s.keyless == nil {
			env, err := att.Payload()
			return err == nil && dsse.WrapVerifier(s.sv).VerifySignature(bytes.NewReader(env), nil) == nil
		}
		cert, err := att.Cert()
		if err != nil || cert == nil {
			return false
		}
		cid, ciss := identityOf(cert)
		return id != "" && cid == id && ciss == issuer
	}
}

// identityOf reads a Fulcio certificate's identity (its first SAN) and OIDC issuer.
func identityOf(cert *x509.Certificate) (id, issuer string) {
	if ids := cryptoutils.GetSubjectAlternateNames(cert); len(ids) > 0 {
		id = ids[0]
	}
	ce := cosign.CertExtensions{Cert: cert}
	return id, ce.GetIssuer()
}
