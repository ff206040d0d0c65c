package sign_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/sign"
)

// TestKeySources: a key file with its password (given, or from COSIGN_PASSWORD), the
// same key in env://VAR, and the errors for a wrong password, a missing file or
// variable, and a KMS scheme this build does not know.
func TestKeySources(t *testing.T) {
	ctx := context.Background()
	key, pub := signtest.Keys(t)
	pem, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WSO2IMG_TEST_KEY", string(pem))
	t.Setenv("COSIGN_PASSWORD", signtest.Password)

	for _, ref := range []string{key, "env://WSO2IMG_TEST_KEY"} {
		for _, pw := range []func() ([]byte, error){signtest.PasswordFunc, nil} {
			s, err := sign.New(ctx, sign.Options{Key: ref, Password: pw})
			if err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
			got, _ := s.PublicKeyPEM()
			want, _ := os.ReadFile(pub)
			if strings.TrimSpace(string(got)) != strings.TrimSpace(string(want)) {
				t.Errorf("%s: public key\n%s\nwant\n%s", ref, got, want)
			}
		}
	}
	if _, err := sign.LoadPublicKey(ctx, pub); err != nil {
		t.Errorf("public key: %v", err)
	}

	wrong := func() ([]byte, error) { return []byte("wrong"), nil }
	for _, tc := range []struct {
		name, ref string
		pw        func() ([]byte, error)
		want      string
	}{
		{"wrong password", key, wrong, "COSIGN_PASSWORD"},
		{"missing file", filepath.Join(t.TempDir(), "nope.key"), nil, "no such file"},
		{"unset variable", "env://WSO2IMG_TEST_UNSET", nil, "WSO2IMG_TEST_UNSET is not set"},
		{"not a key", pub, nil, ""},
		{"unknown KMS", "awskms:///alias/wso2img", nil, "no KMS provider for awskms://: this build of wso2img has hashivault://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sign.New(ctx, sign.Options{Key: tc.ref, Password: tc.pw})
			var kerr *sign.KeyError
			if !errors.As(err, &kerr) || kerr.Ref != tc.ref || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// TestIsKMS tells KMS URIs from files and env://.
func TestIsKMS(t *testing.T) {
	for ref, want := range map[string]bool{
		"hashivault://wso2img": true, "awskms:///alias/x": true, "gcpkms://projects/p/…": true,
		"cosign.key": false, "./keys/cosign.key": false, "env://COSIGN_KEY": false, "/abs/k.key": false, `C:\keys\k.key`: false,
	} {
		if got := sign.IsKMS(ref); got != want {
			t.Errorf("IsKMS(%q) = %v", ref, got)
		}
	}
}
