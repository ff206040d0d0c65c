// Package sign owns signing images with cosign, used as a Go library: key sources (a
// key file, env://VAR, a KMS URI, or keyless through Fulcio with an OIDC identity
// token), the signature payload and its annotations, transparency-log upload to Rekor,
// and the signed in-toto attestations wso2img attaches to every image it builds (SLSA
// provenance and an SPDX SBOM of the added layer, see Subject).
//
// Signatures and attestations are stored the way the stock cosign CLI stores them by
// default, as the tags sha256-<hex>.sig and sha256-<hex>.att next to the image, so that
// `cosign verify` and `cosign verify-attestation` (v2, and v3, which falls back to this
// layout when an image has no Sigstore bundles) find them with no extra flag. An image
// is never changed into an index to hold them.
//
// KMS: the only provider compiled in is HashiCorp Vault's (and OpenBao's) transit
// engine (hashivault://KEY, openbao://KEY). Each sigstore KMS provider is a separate module that drags in a
// cloud SDK (AWS, Azure and GCP together add well over a hundred modules); Vault is
// self-hosted, which is where WSO2 products usually run, and it is the one provider that
// works the same on premises and in every cloud. Other KMSes still work, without being
// compiled in, through sigstore's KMS plugin protocol: a key reference SCHEME://KEY runs
// the program sigstore-kms-SCHEME from $PATH (sigstore's cliplugin). Adding a provider
// is one blank import in kms.go.
//
// It must not import build/ (build calls it, between pushing by digest and tagging) nor
// cobra or viper, and it prints nothing: log lines go to Options.Log.
package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	cremote "github.com/sigstore/cosign/v2/pkg/cosign/remote"
	"github.com/sigstore/cosign/v2/pkg/oci"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	rekorclient "github.com/sigstore/rekor/pkg/client"
	rekorgen "github.com/sigstore/rekor/pkg/generated/client"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/dsse"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/wso2img/wso2img/internal/registry"
)

// Public-good Sigstore services, cosign's defaults.
const (
	DefaultFulcioURL    = "https://fulcio.sigstore.dev"
	DefaultRekorURL     = "https://rekor.sigstore.dev"
	DefaultOIDCIssuer   = "https://oauth2.sigstore.dev/auth"
	DefaultOIDCClientID = "sigstore"
)

// PasswordEnv holds the password of an encrypted cosign key, as for cosign.
const PasswordEnv = "COSIGN_PASSWORD"

// Environment lists the variables this package reads, with what they do, for the CLI's
// help and the README.
var Environment = []struct{ Name, Help string }{
	{PasswordEnv, "password of the cosign private key given with --key"},
	{"ACTIONS_ID_TOKEN_REQUEST_URL", "with ACTIONS_ID_TOKEN_REQUEST_TOKEN: GitHub Actions' OIDC token endpoint (set by the runner with `permissions: id-token: write`); enables keyless signing"},
	{"SIGSTORE_ID_TOKEN", "an OIDC identity token for keyless signing, like --identity-token"},
	{"COSIGN_REPOSITORY", "store signatures and attestations in this repository instead of next to the image (as cosign does)"},
	{"VAULT_ADDR", "with VAULT_TOKEN: the Vault (or OpenBao) server of a hashivault:// (openbao://) key"},
}

// Options configure a Signer.
type Options struct {
	// Key is the private key: a cosign key file (encrypted; password from Password), an
	// env://VAR whose value is such a key, or a KMS URI (hashivault://KEY, or
	// SCHEME://KEY served by a sigstore-kms-SCHEME plugin). Empty means keyless.
	Key string
	// Password returns the key file's password; nil reads $COSIGN_PASSWORD (unset is
	// the empty password).
	Password func() ([]byte, error)

	// FulcioURL issues keyless certificates; default DefaultFulcioURL.
	FulcioURL string
	// RekorURL is the transparency log; default DefaultRekorURL.
	RekorURL string
	// OIDCIssuer and OIDCClientID are used for the interactive browser login when
	// keyless signing finds no identity token; defaults DefaultOIDCIssuer and
	// DefaultOIDCClientID.
	OIDCIssuer   string
	OIDCClientID string
	// IdentityToken is an OIDC identity token for keyless signing, or the path of a file
	// holding one. Empty: $SIGSTORE_ID_TOKEN, GitHub Actions' token (when
	// ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are set), a token file at
	// /var/run/sigstore/cosign/oidc-token; else the browser login when Interactive.
	IdentityToken string
	// Interactive allows the browser login for keyless signing when no token is found.
	Interactive bool

	// TlogUpload uploads every signature and attestation to Rekor, which is what
	// cosign does by default and what verifiers expect unless told
	// --insecure-ignore-tlog. The CLI defaults it to true; turn it off for private or
	// offline registries. Keyless signing needs it in practice: without Rekor's
	// timestamp a keyless signature verifies only while its certificate (10 minutes)
	// is valid.
	TlogUpload bool

	// Registry says how to reach registries.
	Registry registry.Options
	// Log receives progress lines; nil is silent.
	Log io.Writer
	// UserAgent is sent to Fulcio and Rekor.
	UserAgent string
}

// Signer signs images and attaches attestations. It is safe for concurrent use.
type Signer struct {
	opts    Options
	sv      signature.SignerVerifier
	pub     crypto.PublicKey
	keyless *keyless
	rekor   *rekorgen.Rekor
}

// New loads the key (or prepares keyless signing) and checks that it can sign, so that
// a bad key or a missing password fails before anything is built.
func New(ctx context.Context, opts Options) (*Signer, error) {
	if opts.FulcioURL == "" {
		opts.FulcioURL = DefaultFulcioURL
	}
	if opts.RekorURL == "" {
		opts.RekorURL = DefaultRekorURL
	}
	if opts.OIDCIssuer == "" {
		opts.OIDCIssuer = DefaultOIDCIssuer
	}
	if opts.OIDCClientID == "" {
		opts.OIDCClientID = DefaultOIDCClientID
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	s := &Signer{opts: opts}
	var err error
	if opts.Key != "" {
		s.sv, err = LoadPrivateKey(ctx, opts.Key, opts.Password)
		if err != nil {
			return nil, err
		}
	} else {
		if !opts.TlogUpload {
			fmt.Fprintln(opts.Log, "warning: keyless signatures without the transparency log verify only while their 10-minute certificate is valid; sign with --key for --tlog-upload=false")
		}
		s.keyless, err = newKeyless(ctx, opts)
		if err != nil {
			return nil, err
		}
		s.sv = s.keyless.sv
	}
	s.pub, err = s.sv.PublicKey(sigopts.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("reading the public key of %s: %w", s, err)
	}
	if opts.TlogUpload {
		s.rekor, err = rekorclient.GetRekorClient(opts.RekorURL, rekorclient.WithUserAgent(opts.UserAgent))
		if err != nil {
			return nil, fmt.Errorf("rekor %s: %w", opts.RekorURL, err)
		}
	}
	return s, nil
}

// String says how the Signer signs, for logs: "key cosign.key" or "keyless (Fulcio …)".
func (s *Signer) String() string {
	if s.keyless != nil {
		return "keyless (Fulcio " + s.opts.FulcioURL + ")"
	}
	return "key " + s.opts.Key
}

// PublicKey is the key signatures verify with; for keyless signing the ephemeral key
// that the Fulcio certificate binds to the identity.
func (s *Signer) PublicKey() crypto.PublicKey { return s.pub }

// PublicKeyPEM is PublicKey in PEM, the form `cosign verify --key` reads.
func (s *Signer) PublicKeyPEM() ([]byte, error) { return cryptoutils.MarshalPublicKeyToPEM(s.pub) }

// Keyless reports whether the Signer signs keyless (Fulcio certificate).
func (s *Signer) Keyless() bool { return s.keyless != nil }

// Sign signs the image (or index) ref with a cosign simple-signing payload that names
// ref's digest and carries annotations (see Subject.Annotations), and stores the
// signature at ref's sha256-<hex>.sig tag, keeping the signatures already there. An
// identical signature is not added twice. For an index, signing the index digest is
// enough: verifiers check the digest they are given.
func (s *Signer) Sign(ctx context.Context, ref name.Digest, annotations map[string]string) error {
	ann := make(map[string]any, len(annotations))
	for k, v := range annotations {
		ann[k] = v
	}
	payload, err := (&sigpayload.Cosign{Image: ref, Annotations: ann}).MarshalJSON()
	if err != nil {
		return fmt.Errorf("signing %s: payload: %w", ref, err)
	}
	raw, err := s.sv.SignMessage(bytes.NewReader(payload), sigopts.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("signing %s with %s: %w", ref, s, err)
	}
	var opts []static.Option
	if s.keyless != nil {
		cert, chain, err := s.keyless.certificate(ctx)
		if err != nil {
			return fmt.Errorf("signing %s: %w", ref, err)
		}
		opts = append(opts, static.WithCertChain(cert, chain))
	}
	if s.rekor != nil {
		h := sha256.New()
		h.Write(payload)
		signer, err := s.rekorSigner(ctx)
		if err != nil {
			return fmt.Errorf("signing %s: %w", ref, err)
		}
		entry, err := cosign.TLogUpload(ctx, s.rekor, raw, h, signer)
		if err != nil {
			return fmt.Errorf("signing %s: uploading to the transparency log %s: %w", ref, s.opts.RekorURL, err)
		}
		fmt.Fprintf(s.opts.Log, "signature of %s in transparency log %s at index %d\n", ref.DigestStr(), s.opts.RekorURL, *entry.LogIndex)
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	sig, err := static.NewSignature(payload, base64.StdEncoding.EncodeToString(raw), opts...)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	ropts := s.remote(ctx)
	se, err := mutate.AttachSignatureToEntity(ociremote.SignedUnknown(ref, ropts...), sig, mutate.WithDupeDetector(cremote.NewDupeDetector(s.sv)))
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	if err := ociremote.WriteSignatures(ref.Repository, se, ropts...); err != nil {
		return fmt.Errorf("storing the signature of %s: %w", ref, err)
	}
	fmt.Fprintf(s.opts.Log, "signed %s (%s)\n", ref, s)
	return nil
}

// StatementType is the in-toto statement version wso2img writes.
const StatementType = "https://in-toto.io/Statement/v1"

// statement is an in-toto statement about one image.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Attestation is one predicate to attest: its type and its JSON.
type Attestation struct {
	PredicateType string
	Predicate     []byte
}

// Attest wraps predicate (JSON) in an in-toto statement whose subject is ref's digest,
// signs it as a DSSE envelope with the Signer's key, and stores it at ref's
// sha256-<hex>.att tag, replacing an earlier attestation of the same predicate type
// by this signer, where `cosign verify-attestation --type PREDICATE_TYPE` finds it.
func (s *Signer) Attest(ctx context.Context, ref name.Digest, predicateType string, predicate []byte) error {
	return s.AttestAll(ctx, ref, []Attestation{{predicateType, predicate}})
}

// AttestAll is Attest for several predicates, written to the registry at once: one
// update of the sha256-<hex>.att image instead of one for each.
func (s *Signer) AttestAll(ctx context.Context, ref name.Digest, atts []Attestation) error {
	if len(atts) == 0 {
		return nil
	}
	ropts := s.remote(ctx)
	var se oci.SignedEntity = ociremote.SignedUnknown(ref, ropts...)
	var types []string
	for _, a := range atts {
		att, cert, err := s.attestation(ctx, ref, a.PredicateType, a.Predicate)
		if err != nil {
			return err
		}
		se, err = mutate.AttachAttestationToEntity(se, att,
			mutate.WithDupeDetector(cremote.NewDupeDetector(s.sv)), mutate.WithReplaceOp(replaceOp{a.PredicateType, s.mine(cert)}))
		if err != nil {
			return fmt.Errorf("attesting %s: %w", ref, err)
		}
		types = append(types, a.PredicateType)
	}
	if err := ociremote.WriteAttestations(ref.Repository, se, ropts...); err != nil {
		return fmt.Errorf("storing the %s attestation(s) of %s: %w", strings.Join(types, ", "), ref, err)
	}
	fmt.Fprintf(s.opts.Log, "attested %s: %s\n", ref, strings.Join(types, ", "))
	return nil
}

// attestation makes one signed attestation: the statement, its DSSE envelope, and for
// keyless signing the certificate (returned, to tell this signer's earlier ones).
func (s *Signer) attestation(ctx context.Context, ref name.Digest, predicateType string, predicate []byte) (oci.Signature, []byte, error) {
	if predicateType == "" {
		return nil, nil, fmt.Errorf("attesting %s: no predicate type", ref)
	}
	if !json.Valid(predicate) {
		return nil, nil, fmt.Errorf("attesting %s: the %s predicate is not JSON", ref, predicateType)
	}
	alg, hex, ok := strings.Cut(ref.DigestStr(), ":")
	if !ok {
		return nil, nil, fmt.Errorf("attesting %s: malformed digest", ref)
	}
	payload, err := json.Marshal(statement{
		Type:          StatementType,
		Subject:       []subject{{Name: ref.Context().Name(), Digest: map[string]string{alg: hex}}},
		PredicateType: predicateType,
		Predicate:     predicate,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("attesting %s: %w", ref, err)
	}
	envelope, err := dsse.WrapSigner(s.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(payload), sigopts.WithContext(ctx))
	if err != nil {
		return nil, nil, fmt.Errorf("attesting %s with %s: %w", ref, s, err)
	}
	opts := []static.Option{
		static.WithLayerMediaType(ctypes.DssePayloadType),
		static.WithAnnotations(map[string]string{"predicateType": predicateType}),
	}
	var cert []byte
	if s.keyless != nil {
		c, chain, err := s.keyless.certificate(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("attesting %s: %w", ref, err)
		}
		cert = c
		opts = append(opts, static.WithCertChain(cert, chain))
	}
	if s.rekor != nil {
		signer, err := s.rekorSigner(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("attesting %s: %w", ref, err)
		}
		entry, err := cosign.TLogUploadDSSEEnvelope(ctx, s.rekor, envelope, signer)
		if err != nil {
			return nil, nil, fmt.Errorf("attesting %s: uploading to the transparency log %s: %w", ref, s.opts.RekorURL, err)
		}
		fmt.Fprintf(s.opts.Log, "%s attestation of %s in transparency log %s at index %d\n", predicateType, ref.DigestStr(), s.opts.RekorURL, *entry.LogIndex)
		opts = append(opts, static.WithBundle(cbundle.EntryToBundle(entry)))
	}
	att, err := static.NewAttestation(envelope, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("attesting %s: %w", ref, err)
	}
	return att, cert, nil
}

// SignBuild is the signing step of a build, between pushing ref by digest and writing
// its tags: it signs ref with subj's annotations and attaches subj's SLSA provenance
// and SPDX SBOM.
func (s *Signer) SignBuild(ctx context.Context, ref name.Digest, subj *Subject) error {
	prov, err := subj.Provenance()
	if err != nil {
		return fmt.Errorf("attesting %s: %w", ref, err)
	}
	sbom, err := subj.SBOM()
	if err != nil {
		return fmt.Errorf("attesting %s: %w", ref, err)
	}
	if err := s.Sign(ctx, ref, subj.Annotations()); err != nil {
		return err
	}
	return s.AttestAll(ctx, ref, []Attestation{{PredicateSLSAProvenance, prov}, {PredicateSPDX, sbom}})
}

// rekorSigner is what Rekor records as the signer: the Fulcio certificate for keyless
// signing, else the public key, in PEM.
func (s *Signer) rekorSigner(ctx context.Context) ([]byte, error) {
	if s.keyless != nil {
		cert, _, err := s.keyless.certificate(ctx)
		return cert, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(s.pub)
}

func (s *Signer) remote(ctx context.Context) []ociremote.Option {
	return []ociremote.Option{ociremote.WithRemoteOptions(s.opts.Registry.Remote(ctx)...)}
}

// readPassword is the default Options.Password.
func readPassword() ([]byte, error) { return []byte(os.Getenv(PasswordEnv)), nil }
