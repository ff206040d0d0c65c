package testpgp_test

import (
	"bytes"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/wso2img/wso2img/internal/testpgp"
)

// TestSignatures proves that the keys and signatures testpgp makes are judged by
// go-crypto as their names say, after a round trip through the serialised keyring
// (so revocations and lifetimes really are in the exported public keys).
func TestSignatures(t *testing.T) {
	data := []byte("the signed bytes\n")
	for _, tc := range []struct {
		name     string
		opts     []testpgp.Option
		signOpts []testpgp.SignOption
		want     error // nil: valid
	}{
		{"good", nil, nil, nil},
		{"signing subkey", []testpgp.Option{testpgp.SigningSubkey()}, nil, nil},
		{"v6", []testpgp.Option{testpgp.V6()}, nil, nil},
		{"expired key", []testpgp.Option{testpgp.Expired()}, nil, pgperrors.ErrKeyExpired},
		{"expired key, signing subkey", []testpgp.Option{testpgp.Expired(), testpgp.SigningSubkey()}, nil, pgperrors.ErrKeyExpired},
		{"revoked key", []testpgp.Option{testpgp.Revoked()}, nil, pgperrors.ErrKeyRevoked},
		{"revoked subkey", []testpgp.Option{testpgp.RevokedSubkey()}, nil, pgperrors.ErrKeyRevoked},
		{
			"expired signature",
			[]testpgp.Option{testpgp.CreatedAt(time.Now().Add(-24 * time.Hour))},
			[]testpgp.SignOption{testpgp.SignedAt(time.Now().Add(-2 * time.Hour)), testpgp.SignatureLifetime(time.Hour)},
			pgperrors.ErrSignatureExpired,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testpgp.NewKey(t, "signer", tc.opts...)
			for _, armored := range []bool{false, true} {
				pub := testpgp.BinaryPublic(t, e)
				read := openpgp.ReadKeyRing
				if armored {
					pub = testpgp.ArmoredPublic(t, e)
					read = openpgp.ReadArmoredKeyRing
				}
				kr, err := read(bytes.NewReader(pub))
				if err != nil {
					t.Fatalf("reading keyring (armored %v): %v", armored, err)
				}
				sig := testpgp.Sign(t, e, data, armored, tc.signOpts...)
				check := openpgp.CheckDetachedSignature
				if armored {
					check = openpgp.CheckArmoredDetachedSignature
				}
				signer, err := check(kr, bytes.NewReader(data), bytes.NewReader(sig), nil)
				if !errors.Is(err, tc.want) {
					t.Fatalf("armored %v: CheckDetachedSignature error = %v, want %v", armored, err, tc.want)
				}
				if signer == nil || testpgp.Fingerprint(signer) != testpgp.Fingerprint(e) {
					t.Errorf("armored %v: signer = %v, want the primary key %s", armored, signer, testpgp.Fingerprint(e))
				}
				if tc.want == nil {
					_, err := check(kr, bytes.NewReader(append(data, 'x')), bytes.NewReader(sig), nil)
					if err == nil {
						t.Errorf("armored %v: tampered data verified", armored)
					}
				}
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []testpgp.Option
		want *regexp.Regexp
	}{
		{"v4", nil, regexp.MustCompile(`^[0-9A-F]{40}$`)},
		{"v6", []testpgp.Option{testpgp.V6()}, regexp.MustCompile(`^[0-9A-F]{64}$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testpgp.NewKey(t, "fpr", tc.opts...)
			if got := testpgp.Fingerprint(e); !tc.want.MatchString(got) {
				t.Errorf("Fingerprint = %q, want %s", got, tc.want)
			}
		})
	}
}

func TestSubkeySigns(t *testing.T) {
	e := testpgp.NewKey(t, "sub", testpgp.SigningSubkey())
	sig := testpgp.Sign(t, e, []byte("x"), false)
	kr, err := openpgp.ReadKeyRing(bytes.NewReader(testpgp.BinaryPublic(t, e)))
	if err != nil {
		t.Fatal(err)
	}
	want := e.Subkeys[len(e.Subkeys)-1].PublicKey.KeyId
	if keys := kr.KeysById(want); len(keys) != 1 || keys[0].PublicKey == keys[0].Entity.PrimaryKey {
		t.Fatalf("signing subkey %X not found as a subkey in the exported keyring", want)
	}
	if _, err := openpgp.CheckDetachedSignature(kr, bytes.NewReader([]byte("x")), bytes.NewReader(sig), nil); err != nil {
		t.Fatalf("subkey signature: %v", err)
	}
	p, err := readIssuer(sig)
	if err != nil {
		t.Fatal(err)
	}
	if p != want {
		t.Errorf("signature issuer = %X, want the subkey %X", p, want)
	}
}

func readIssuer(sig []byte) (uint64, error) {
	p, err := packet.Read(bytes.NewReader(sig))
	if err != nil {
		return 0, err
	}
	s, ok := p.(*packet.Signature)
	if !ok || s.IssuerKeyId == nil {
		return 0, errors.New("not a signature with an issuer")
	}
	return *s.IssuerKeyId, nil
}
