package inputs

import "strings"

// What a VerifyError is about.
const (
	whatHTTPS     = "https"
	whatTLS       = "tls"
	whatChecksum  = "checksum" // missing or malformed
	whatSHA256    = "sha256"   // mismatch
	whatSHA512    = "sha512"   // mismatch
	whatGPG       = "gpg signature"
	whatSymlink   = "symlink"
	whatLocalFile = "local file"
)

// VerifyError is a failed verification of an input: the CLI maps it to exit code 3.
// Network and I/O failures are plain errors, except an untrusted TLS certificate,
// which is a VerifyError with What "tls".
type VerifyError struct {
	// Profile and Field name the input; Source is its URL or path.
	Profile, Field, Source string
	// What was checked: "sha256", "sha512", "checksum", "gpg signature", "https",
	// "tls", "symlink", "local file".
	What     string
	Expected string
	Found    string
	// Err is the underlying error, if any.
	Err error
}

// Error is one line: where, what, then expected and found, e.g.
//
//	profile "is", inputs[2] (https://h/x.jar): sha256 mismatch: expected 3a…, found 9f…
func (e *VerifyError) Error() string {
	var b strings.Builder
	b.WriteString(where(e.Profile, e.Field, e.Source))
	b.WriteString(": ")
	b.WriteString(e.What)
	if e.What == whatSHA256 || e.What == whatSHA512 {
		b.WriteString(" mismatch")
	}
	if e.Expected != "" || e.Found != "" {
		b.WriteString(": expected ")
		b.WriteString(e.Expected)
		b.WriteString(", found ")
		b.WriteString(e.Found)
	}
	// Found usually already says what Err says; repeat it only when nothing else does.
	if e.Err != nil && e.Found == "" {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(s Spec, what, expected, found string) *VerifyError {
	return &VerifyError{Profile: s.Profile, Field: s.Field, Source: s.source(), What: what, Expected: expected, Found: found}
}
