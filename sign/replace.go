package sign

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/sigstore/cosign/v2/pkg/oci"
)

// replaceOp drops the attestations of one predicate type when a new one is attached,
// like cosign's `attest --replace`, but silently (cosign's prints to stderr).
type replaceOp struct{ predicateType string }

func (r replaceOp) Replace(existing oci.Signatures, att oci.Signature) (oci.Signatures, error) {
	all, err := existing.Get()
	if err != nil {
		return nil, err
	}
	kept := []oci.Signature{att}
	for _, s := range all {
		// What cannot be read is not ours to drop.
		if pt, err := predicateTypeOf(s); err != nil || pt != r.predicateType {
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
