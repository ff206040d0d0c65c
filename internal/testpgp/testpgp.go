// Package testpgp makes real OpenPGP keys, keyrings and detached signatures for tests:
// good keys, keys with a signing subkey, expired and revoked keys, and expired
// signatures. It is for tests only; every function fails the test on error.
package testpgp

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // SHA-1 signatures, made to prove they are refused
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Option changes how NewKey makes a key.
type Option func(*keyOptions)

type keyOptions struct {
	created       time.Time
	lifetime      time.Duration
	revoked       bool
	subkey        bool
	revokedSubkey bool
	rsa           bool
	v6            bool
}

// Expired makes a key created two days ago that expired one hour after its creation.
func Expired() Option {
	return func(o *keyOptions) {
		o.created = time.Now().Add(-48 * time.Hour)
		o.lifetime = time.Hour
	}
}

// CreatedAt backdates the key, e.g. to make a signature in the past with it.
func CreatedAt(t time.Time) Option { return func(o *keyOptions) { o.created = t } }

// Revoked adds a revocation of the primary key (reason: key compromised).
func Revoked() Option { return func(o *keyOptions) { o.revoked = true } }

// SigningSubkey adds a signing subkey; Sign then signs with it, not the primary key.
func SigningSubkey() Option { return func(o *keyOptions) { o.subkey = true } }

// RevokedSubkey adds a signing subkey and revokes it; Sign still signs with it.
func RevokedSubkey() Option {
	return func(o *keyOptions) { o.subkey, o.revokedSubkey = true, true }
}

// V6 makes a version 6 key (RFC 9580, Ed25519): its fingerprint has 64 hex digits.
// RSA makes a 2048-bit RSA key instead of Ed25519 (slower; for signatures an EdDSA key
// cannot make, such as SHA-1 ones).
func RSA() Option { return func(o *keyOptions) { o.rsa = true } }

func V6() Option { return func(o *keyOptions) { o.v6 = true } }

// NewKey makes an Ed25519 key with one user ID "name <name@example.com>" and its
// private key. Ed25519 rather than RSA keeps tests fast under -race.
func NewKey(t testing.TB, name string, opts ...Option) *openpgp.Entity {
	t.Helper()
	o := keyOptions{created: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	created := o.created
	cfg := &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: uint32(o.lifetime / time.Second),
	}
	if o.v6 {
		cfg.Algorithm = packet.PubKeyAlgoEd25519
		cfg.V6Keys = true
	}
	if o.rsa {
		cfg.Algorithm, cfg.RSABits = packet.PubKeyAlgoRSA, 2048
	}
	e, err := openpgp.NewEntity(name, "", name+"@example.com", cfg)
	if err != nil {
		t.Fatalf("testpgp: making key %q: %v", name, err)
	}
	if o.subkey {
		if err := e.AddSigningSubkey(cfg); err != nil {
			t.Fatalf("testpgp: adding signing subkey to %q: %v", name, err)
		}
	}
	// Revocations are made now, not at creation: a revocation dated before "now" is in
	// force, which is what a verifier must see.
	now := &packet.Config{}
	if o.revoked {
		if err := e.RevokeKey(packet.KeyCompromised, "test: revoked", now); err != nil {
			t.Fatalf("testpgp: revoking %q: %v", name, err)
		}
	}
	if o.revokedSubkey {
		sk := &e.Subkeys[len(e.Subkeys)-1]
		if err := e.RevokeSubkey(sk, packet.KeyCompromised, "test: revoked", now); err != nil {
			t.Fatalf("testpgp: revoking subkey of %q: %v", name, err)
		}
	}
	return e
}

// Fingerprint is the primary key's fingerprint in uppercase hex (40 digits for v4,
// 64 for v6).
func Fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// SubkeyFingerprint is the fingerprint of e's last subkey in uppercase hex.
func SubkeyFingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.Subkeys[len(e.Subkeys)-1].PublicKey.Fingerprint))
}

// BinaryPublic serialises the public keys of entities as a binary keyring.
func BinaryPublic(t testing.TB, entities ...*openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entities {
		if err := e.Serialize(&b); err != nil {
			t.Fatalf("testpgp: serialising %s: %v", Fingerprint(e), err)
		}
	}
	return b.Bytes()
}

// ArmoredPublic serialises the public keys of entities as an armored keyring.
func ArmoredPublic(t testing.TB, entities ...*openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatalf("testpgp: armoring keyring: %v", err)
	}
	if _, err := w.Write(BinaryPublic(t, entities...)); err != nil {
		t.Fatalf("testpgp: armoring keyring: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("testpgp: armoring keyring: %v", err)
	}
	return b.Bytes()
}

// SignOption changes how Sign makes a signature.
type SignOption func(*signOptions)

type signOptions struct {
	at       time.Time
	lifetime time.Duration
	hash     crypto.Hash
}

// WithHash makes the signature with this hash (crypto.SHA1 for a weak one, which
// go-crypto will not write itself: Sign then builds the packet by hand).
func WithHash(h crypto.Hash) SignOption { return func(o *signOptions) { o.hash = h } }

// SignedAt dates the signature.
func SignedAt(at time.Time) SignOption { return func(o *signOptions) { o.at = at } }

// SignatureLifetime makes the signature expire that long after it was made.
func SignatureLifetime(d time.Duration) SignOption {
	return func(o *signOptions) { o.lifetime = d }
}

// Sign makes a detached binary-mode signature of data, armored or binary, with e's
// signing key (its signing subkey if it has one). It signs even with an expired or
// revoked key, as an attacker holding such a key could: by default an expired key
// signs a minute after its creation, when it was still valid.
func Sign(t testing.TB, e *openpgp.Entity, data []byte, armored bool, opts ...SignOption) []byte {
	t.Helper()
	o := signOptions{at: time.Now()}
	if sig, _ := e.PrimarySelfSignature(); sig != nil && e.PrimaryKey.KeyExpired(sig, o.at) {
		o.at = e.PrimaryKey.CreationTime.Add(time.Minute)
	}
	for _, opt := range opts {
		opt(&o)
	}
	at := o.at
	cfg := &packet.Config{
		Time:            func() time.Time { return at },
		SigLifetimeSecs: uint32(o.lifetime / time.Second),
		DefaultHash:     o.hash,
	}
	// go-crypto refuses to sign with a revoked key; sign with a copy that has no
	// revocations, so the verifier is the one that has to notice.
	signer := *e
	signer.Revocations = nil
	signer.Subkeys = append([]openpgp.Subkey(nil), e.Subkeys...)
	for i := range signer.Subkeys {
		signer.Subkeys[i].Revocations = nil
	}
	if o.hash == crypto.SHA1 {
		return signSHA1(t, &signer, data, armored, at)
	}
	var b bytes.Buffer
	sign := openpgp.DetachSign
	if armored {
		sign = openpgp.ArmoredDetachSign
	}
	if err := sign(&b, &signer, bytes.NewReader(data), cfg); err != nil {
		t.Fatalf("testpgp: signing with %s: %v", Fingerprint(e), err)
	}
	return b.Bytes()
}

// RevokedCopy returns a copy of e with a revocation of its primary key: written next to
// e in one keyring file, it is the same key twice, once revoked.
func RevokedCopy(t testing.TB, e *openpgp.Entity) *openpgp.Entity {
	t.Helper()
	c := *e
	c.Revocations = append([]*packet.Signature(nil), e.Revocations...)
	if err := c.RevokeKey(packet.KeyCompromised, "test: compromised", nil); err != nil {
		t.Fatalf("testpgp: revoking %s: %v", Fingerprint(e), err)
	}
	return &c
}

// signSHA1 writes a v4 binary-document signature hashed with SHA-1, the way old
// release tooling did, for tests that prove such signatures are refused.
func signSHA1(t testing.TB, e *openpgp.Entity, data []byte, armored bool, at time.Time) []byte {
	t.Helper()
	priv := e.PrivateKey
	sig := &packet.Signature{
		Version: 4, SigType: packet.SigTypeBinary, PubKeyAlgo: priv.PubKeyAlgo,
		Hash: crypto.SHA1, CreationTime: at, IssuerKeyId: &priv.KeyId,
	}
	noSalt := false // the salt notation has no SHA-1 form
	cfg := &packet.Config{Time: func() time.Time { return at }, NonDeterministicSignaturesViaNotation: &noSalt}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatalf("testpgp: SHA-1 signature: %v", err)
	}
	h.Write(data)
	if err := sig.Sign(h, priv, cfg); err != nil {
		t.Fatalf("testpgp: SHA-1 signature: %v", err)
	}
	var b bytes.Buffer
	w := io.Writer(&b)
	var aw io.WriteCloser
	if armored {
		if aw, err = armor.Encode(&b, openpgp.SignatureType, nil); err != nil {
			t.Fatal(err)
		}
		w = aw
	}
	if err := sig.Serialize(w); err != nil {
		t.Fatalf("testpgp: SHA-1 signature: %v", err)
	}
	if aw != nil {
		aw.Close()
	}
	return b.Bytes()
}
