package inputs_test

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/testpgp"
)

func TestLoadKeyring(t *testing.T) {
	a := testpgp.NewKey(t, "a")
	b := testpgp.NewKey(t, "b", testpgp.SigningSubkey())
	v6 := testpgp.NewKey(t, "v6", testpgp.V6())
	stranger := testpgp.NewKey(t, "stranger")
	keysFile := bytes.Join([][]byte{
		[]byte("This file contains the PGP keys of the project's release managers.\n\npub   ed25519 2019-08-15\n"),
		testpgp.ArmoredPublic(t, a),
		[]byte("\npub   ed25519 2019-08-16\n"),
		testpgp.ArmoredPublic(t, b),
	}, nil)
	spaced := func(fp string) string { // "abcd ef01 …", as gpg prints it
		var parts []string
		for i := 0; i < len(fp); i += 4 {
			parts = append(parts, strings.ToLower(fp[i:i+4]))
		}
		return strings.Join(parts, " ")
	}
	for _, tc := range []struct {
		name    string
		keyring []byte
		pinned  []string
		err     string // "" for success
	}{
		{"armored", testpgp.ArmoredPublic(t, a, b), []string{testpgp.Fingerprint(a)}, ""},
		{"binary", testpgp.BinaryPublic(t, a, b), []string{testpgp.Fingerprint(b)}, ""},
		{"KEYS file of several armored blocks", keysFile, []string{testpgp.Fingerprint(a), testpgp.Fingerprint(b)}, ""},
		{"lower case with spaces", testpgp.ArmoredPublic(t, a), []string{spaced(testpgp.Fingerprint(a))}, ""},
		{"v6 fingerprint", testpgp.ArmoredPublic(t, v6, a), []string{testpgp.Fingerprint(v6)}, ""},
		{"pinned twice", testpgp.ArmoredPublic(t, a), []string{testpgp.Fingerprint(a), spaced(testpgp.Fingerprint(a))}, ""},
		{"not in the file", testpgp.ArmoredPublic(t, a, b), []string{testpgp.Fingerprint(stranger)},
			"pinned fingerprint " + testpgp.Fingerprint(stranger) + " not found; the file has primary keys " + testpgp.Fingerprint(a) + ", " + testpgp.Fingerprint(b)},
		{"one of two not in the file", testpgp.ArmoredPublic(t, a), []string{testpgp.Fingerprint(a), testpgp.Fingerprint(b)}, "not found"},
		{"subkey fingerprint", testpgp.ArmoredPublic(t, b), []string{testpgp.SubkeyFingerprint(b)}, "is a subkey of " + testpgp.Fingerprint(b)},
		{"long key ID", testpgp.ArmoredPublic(t, a), []string{testpgp.Fingerprint(a)[24:]}, "expected 40 (v4) or 64 (v6) hex digits, found 16"},
		{"not hex", testpgp.ArmoredPublic(t, a), []string{strings.Repeat("G", 40)}, "malformed"},
		{"0x prefix", testpgp.ArmoredPublic(t, a), []string{"0x" + testpgp.Fingerprint(a)}, "malformed"},
		{"nothing pinned", testpgp.ArmoredPublic(t, a), nil, "no fingerprint is pinned"},
		{"not a keyring", []byte("hello"), []string{testpgp.Fingerprint(a)}, "loading keyring"},
		{"armored, but no public key", testpgp.Sign(t, a, []byte("x"), true), []string{testpgp.Fingerprint(a)}, "no armored public key block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "keys.asc")
			if err := os.WriteFile(p, tc.keyring, 0o644); err != nil {
				t.Fatal(err)
			}
			kr, err := inputs.LoadKeyring(p, tc.pinned)
			if tc.err == "" {
				if err != nil || kr == nil {
					t.Fatalf("LoadKeyring: %v", err)
				}
				return
			}
			wantContains(t, err, p, tc.err)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "nope.asc")
		_, err := inputs.LoadKeyring(p, []string{testpgp.Fingerprint(a)})
		wantContains(t, err, "loading keyring "+p)
	})
}

func TestFetchSignature(t *testing.T) {
	var (
		vendor   = testpgp.NewKey(t, "vendor")
		sub      = testpgp.NewKey(t, "vendor-subkey", testpgp.SigningSubkey())
		v6       = testpgp.NewKey(t, "vendor-v6", testpgp.V6())
		stranger = testpgp.NewKey(t, "stranger")
		unpinned = testpgp.NewKey(t, "unpinned")
		expired  = testpgp.NewKey(t, "expired", testpgp.Expired())
		revoked  = testpgp.NewKey(t, "revoked", testpgp.Revoked())
		revSub   = testpgp.NewKey(t, "revoked-subkey", testpgp.RevokedSubkey())
		old      = testpgp.NewKey(t, "old", testpgp.CreatedAt(time.Now().Add(-24*time.Hour)))
		rsa      = testpgp.NewKey(t, "vendor-rsa", testpgp.RSA())
	)
	inFile := []*openpgp.Entity{vendor, sub, v6, unpinned, expired, revoked, revSub, old, rsa}
	var pinned []string
	for _, e := range inFile {
		if e != unpinned {
			pinned = append(pinned, testpgp.Fingerprint(e))
		}
	}
	armoredKR := loadKeyring(t, testpgp.ArmoredPublic(t, inFile...), pinned...)
	// The vendor's key twice in one file, once with its revocation: revoked wins,
	// whichever copy comes first.
	twiceKR := loadKeyring(t, append(testpgp.ArmoredPublic(t, vendor), testpgp.ArmoredPublic(t, testpgp.RevokedCopy(t, vendor))...), testpgp.Fingerprint(vendor))
	twiceRevokedFirstKR := loadKeyring(t, append(testpgp.ArmoredPublic(t, testpgp.RevokedCopy(t, vendor)), testpgp.ArmoredPublic(t, vendor)...), testpgp.Fingerprint(vendor))
	binaryKR := loadKeyring(t, testpgp.BinaryPublic(t, inFile...), pinned...)
	expiredSig := testpgp.Sign(t, old, jar, true, testpgp.SignedAt(time.Now().Add(-2*time.Hour)), testpgp.SignatureLifetime(time.Hour))
	sigFile := filepath.Join(t.TempDir(), "app.jar.sig")
	if err := os.WriteFile(sigFile, testpgp.Sign(t, vendor, jar, false), 0o644); err != nil {
		t.Fatal(err)
	}

	for i, tc := range []struct {
		name    string
		served  []byte // the input's bytes; default jar
		sig     []byte // the signature served next to it
		sigPath string // a local signature instead
		kr      *inputs.Keyring
		signer  *openpgp.Entity // want success, signed by this pinned key
		field   string          // field of the error; default inputs[0]
		reason  string          // in the error
	}{
		{name: "armored signature, armored keyring", sig: testpgp.Sign(t, vendor, jar, true), kr: armoredKR, signer: vendor},
		{name: "binary signature, binary keyring", sig: testpgp.Sign(t, vendor, jar, false), kr: binaryKR, signer: vendor},
		{name: "armored signature, binary keyring", sig: testpgp.Sign(t, vendor, jar, true), kr: binaryKR, signer: vendor},
		{name: "signing subkey of a pinned key", sig: testpgp.Sign(t, sub, jar, true), kr: armoredKR, signer: sub},
		{name: "v6 key", sig: testpgp.Sign(t, v6, jar, false), kr: armoredKR, signer: v6},
		{name: "local signature file", sigPath: sigFile, kr: armoredKR, signer: vendor},
		{name: "tampered content", served: []byte("evil"), sig: testpgp.Sign(t, vendor, jar, true), kr: armoredKR,
			reason: "a bad signature by key " + testpgp.Fingerprint(vendor) + ": it does not match the content"},
		{name: "key not in the keyring", sig: testpgp.Sign(t, stranger, jar, true), kr: armoredKR,
			reason: "a signature by key " + testpgp.Fingerprint(stranger) + ", which is not in keyring"},
		{name: "key in the keyring but not pinned", sig: testpgp.Sign(t, unpinned, jar, true), kr: armoredKR,
			reason: "a signature by key " + testpgp.Fingerprint(unpinned) + ", which is in keyring"},
		{name: "expired key", sig: testpgp.Sign(t, expired, jar, true), kr: armoredKR,
			reason: "a signature by key " + testpgp.Fingerprint(expired) + ", which has expired"},
		{name: "revoked key", sig: testpgp.Sign(t, revoked, jar, false), kr: binaryKR,
			reason: "a signature by key " + testpgp.Fingerprint(revoked) + ", which is revoked"},
		{name: "revoked signing subkey", sig: testpgp.Sign(t, revSub, jar, true), kr: armoredKR,
			reason: "a signature by subkey " + testpgp.SubkeyFingerprint(revSub) + " of key " + testpgp.Fingerprint(revSub) + ", which is revoked"},
		{name: "RSA key, SHA-256", sig: testpgp.Sign(t, rsa, jar, true), kr: armoredKR, signer: rsa},
		{name: "SHA-1 signature", sig: testpgp.Sign(t, rsa, jar, true, testpgp.WithHash(crypto.SHA1)), kr: armoredKR,
			reason: "made with SHA-1"},
		{name: "key and its revocation as separate copies", sig: testpgp.Sign(t, vendor, jar, true), kr: twiceKR,
			reason: "a signature by key " + testpgp.Fingerprint(vendor) + ", which is revoked"},
		{name: "revocation copy first", sig: testpgp.Sign(t, vendor, jar, true), kr: twiceRevokedFirstKR,
			reason: "a signature by key " + testpgp.Fingerprint(vendor) + ", which is revoked"},
		{name: "expired signature", sig: expiredSig, kr: armoredKR,
			reason: "an expired signature by key " + testpgp.Fingerprint(old)},
		{name: "not a signature", sig: []byte("hello, world"), kr: armoredKR, reason: "gpg signature: expected a valid signature"},
		{name: "armored key block, not a signature", sig: testpgp.ArmoredPublic(t, vendor), kr: armoredKR,
			reason: `an armored "PGP PUBLIC KEY BLOCK" block, not a signature`},
		{name: "signature file too big", sig: bytes.Repeat([]byte("A"), 1<<20+1), kr: armoredKR,
			field: "inputs[0].signature", reason: "expected a signature file of at most 1 MiB, found a bigger file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := jar
			if tc.served != nil {
				served = tc.served
			}
			dir := fmt.Sprintf("/%d/", i)
			srv := newFiles(t, map[string][]byte{dir + "app.jar": served, dir + "app.jar.asc": tc.sig})
			var log syncBuffer
			f := newFetcher(t, inputs.Options{CAFile: srv.CAFile, Log: &log})
			s := inputs.Spec{
				Profile: "wso2am", Field: "inputs[0]", URL: srv.URL + dir + "app.jar", SHA256: sha256hex(served),
				Signature: srv.URL + dir + "app.jar.asc", Keyring: tc.kr,
			}
			if tc.sigPath != "" {
				s.Signature = tc.sigPath
			}
			v, err := f.Fetch(context.Background(), s)
			if tc.signer != nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if want := testpgp.Fingerprint(tc.signer); v.Signer != want {
					t.Errorf("Signer = %s, want the pinned primary key %s", v.Signer, want)
				}
				if want := "gpg signature by " + v.Signer + " verified"; !strings.Contains(log.String(), want) {
					t.Errorf("log = %q, want it to say %q", log.String(), want)
				}
				return
			}
			field := "inputs[0]"
			if tc.field != "" {
				field = tc.field
			}
			ve := wantVerifyError(t, err, "gpg signature", `profile "wso2am", `+field, tc.reason)
			if ve.Field != field {
				t.Errorf("Field = %q, want %q", ve.Field, field)
			}
		})
	}
}

func TestFetchSignedLocalFile(t *testing.T) {
	vendor := testpgp.NewKey(t, "vendor")
	kr := loadKeyring(t, testpgp.BinaryPublic(t, vendor), testpgp.Fingerprint(vendor))
	root := t.TempDir()
	file := filepath.Join(root, "patch.zip")
	if err := os.WriteFile(file, jar, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		sig    []byte
		reason string
	}{
		{"good", testpgp.Sign(t, vendor, jar, true), ""},
		{"signs other bytes", testpgp.Sign(t, vendor, []byte("other"), true), "does not match the content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := filepath.Join(t.TempDir(), "patch.zip.asc")
			if err := os.WriteFile(sig, tc.sig, 0o644); err != nil {
				t.Fatal(err)
			}
			f := newFetcher(t, inputs.Options{})
			v, err := f.Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[1]", Path: file, Root: root, Signature: sig, Keyring: kr})
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if v.Signer != testpgp.Fingerprint(vendor) {
					t.Errorf("Signer = %q, want %s", v.Signer, testpgp.Fingerprint(vendor))
				}
				return
			}
			wantVerifyError(t, err, "gpg signature", file, tc.reason, sig)
		})
	}
}
