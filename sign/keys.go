package sign

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"github.com/wso2img/wso2img/profiles"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
)

// EnvPrefix marks a key reference held in an environment variable: env://COSIGN_KEY.
const EnvPrefix = "env://"

// uriRE matches a KMS key reference: SCHEME://… (env:// is not one).
var uriRE = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://`)

// IsKMS reports whether ref names a KMS key (hashivault://…, awskms://…) rather than a
// file or env://VAR.
func IsKMS(ref string) bool { return uriRE.MatchString(ref) && !strings.HasPrefix(ref, EnvPrefix) }

// KeyError is a key that cannot be loaded: a missing file, a wrong password, an unknown
// KMS scheme. Ref is the key reference as given.
type KeyError struct {
	Ref string
	Err error
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %s: %v", e.Ref, e.Err) }
func (e *KeyError) Unwrap() error { return e.Err }

// LoadPrivateKey loads a signing key: a cosign key file, env://VAR, or a KMS URI.
// password returns a key file's password; nil reads $COSIGN_PASSWORD.
func LoadPrivateKey(ctx context.Context, ref string, password func() ([]byte, error)) (signature.SignerVerifier, error) {
	if IsKMS(ref) {
		sv, err := kmsKey(ctx, ref)
		if err != nil {
			return nil, &KeyError{Ref: ref, Err: err}
		}
		return sv, nil
	}
	pem, err := readKeyRef(ref)
	if err != nil {
		return nil, &KeyError{Ref: ref, Err: err}
	}
	if password == nil {
		password = readPassword
	}
	pw, err := password()
	if err != nil {
		return nil, &KeyError{Ref: ref, Err: fmt.Errorf("reading the password: %w", err)}
	}
	sv, err := cosign.LoadPrivateKey(pem, pw, nil)
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") {
			err = fmt.Errorf("%w (wrong password? it is read from $%s)", err, PasswordEnv)
		}
		return nil, &KeyError{Ref: ref, Err: err}
	}
	return sv, nil
}

// LoadPublicKey loads a verification key: a PEM public key file, env://VAR, or a KMS
// URI. RSA, ECDSA and Ed25519 keys are read; signatures are checked with SHA-256, as
// cosign does.
func LoadPublicKey(ctx context.Context, ref string) (signature.Verifier, error) {
	if IsKMS(ref) {
		v, err := kmsKey(ctx, ref)
		if err != nil {
			return nil, &KeyError{Ref: ref, Err: err}
		}
		return v, nil
	}
	pem, err := readKeyRef(ref)
	if err != nil {
		return nil, &KeyError{Ref: ref, Err: err}
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pem)
	if err != nil {
		return nil, &KeyError{Ref: ref, Err: fmt.Errorf("not a PEM public key: %w", err)}
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, &KeyError{Ref: ref, Err: err}
	}
	return v, nil
}

// readKeyRef reads a key file, the variable of an env://VAR reference, or a public key
// embedded in wso2img (stock:NAME, see profiles.StockKey).
func readKeyRef(ref string) ([]byte, error) {
	if name, ok := strings.CutPrefix(ref, profiles.StockKeyPrefix); ok {
		if b, found := profiles.StockKey(name); found {
			return b, nil
		}
		return nil, fmt.Errorf("no key %q is embedded in wso2img", name)
	}
	if name, ok := strings.CutPrefix(ref, EnvPrefix); ok {
		v, set := os.LookupEnv(name)
		if !set || v == "" {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		return []byte(v), nil
	}
	return os.ReadFile(ref)
}

// kmsKey opens a KMS key through a compiled-in provider or a sigstore-kms-SCHEME
// plugin on $PATH.
func kmsKey(ctx context.Context, ref string) (kms.SignerVerifier, error) {
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	var nf *kms.ProviderNotFoundError
	if errors.As(err, &nf) {
		scheme, _, _ := strings.Cut(ref, "://")
		have := kms.SupportedProviders()
		sort.Strings(have)
		return nil, fmt.Errorf("no KMS provider for %s://: this build of wso2img has %s compiled in, and no sigstore-kms-%s plugin is on $PATH",
			scheme, strings.Join(have, ", "), scheme)
	}
	return sv, err
}
