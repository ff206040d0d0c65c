package inputs_test

import (
	"bytes"
	"crypto"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/wso2img/wso2img/internal/testpgp"
)

// FuzzSignature feeds the signature check arbitrary signature bytes (armored or
// binary, mangled) over a fixed content: whatever it accepts must be a signature that
// go-crypto itself verifies with a pinned key, by that key, with no weak hash; whatever
// it refuses must say why in words.
func FuzzSignature(f *testing.F) {
	vendor := testpgp.NewKey(f, "vendor")
	rsa := testpgp.NewKey(f, "vendor-rsa", testpgp.RSA())
	stranger := testpgp.NewKey(f, "stranger")
	data := []byte("PK\x03\x04 a jar")
	kr := loadKeyring(f, testpgp.ArmoredPublic(f, vendor, rsa), testpgp.Fingerprint(vendor), testpgp.Fingerprint(rsa))
	for _, seed := range [][]byte{
		testpgp.Sign(f, vendor, data, true),
		testpgp.Sign(f, vendor, data, false),
		testpgp.Sign(f, rsa, data, false),
		testpgp.Sign(f, rsa, data, true, testpgp.WithHash(crypto.SHA1)),
		testpgp.Sign(f, stranger, data, true),
		testpgp.ArmoredPublic(f, vendor),
		[]byte("-----BEGIN PGP SIGNATURE-----\n\n=AAAA\n-----END PGP SIGNATURE-----\n"),
		{0x88, 0x00},
	} {
		f.Add(seed)
	}
	trusted := openpgp.EntityList{vendor, rsa}
	f.Fuzz(func(t *testing.T, sig []byte) {
		signer, err := kr.CheckSignature(data, sig)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("a refusal without a reason")
			}
			return
		}
		if signer != testpgp.Fingerprint(vendor) && signer != testpgp.Fingerprint(rsa) {
			t.Fatalf("accepted a signature by %s, which is not pinned", signer)
		}
		body := sig
		if len(sig) > 0 && sig[0]&0x80 == 0 {
			return // armored: go-crypto's own armor reading differs in leniency only
		}
		e, verr := openpgp.CheckDetachedSignature(trusted, bytes.NewReader(data), bytes.NewReader(body), nil)
		if verr != nil || e == nil || testpgp.Fingerprint(e) != signer {
			t.Fatalf("accepted a signature go-crypto refuses: %v", verr)
		}
	})
}
