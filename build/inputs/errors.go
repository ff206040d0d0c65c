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
	whatSize      = "size"
	// whatCredential is a URL that carries a credential.
	whatCredential = "credentials in the URL"
	// whatArchive prefixes build/archive's What: "archive path", "archive compression ratio".
	whatArchive = "archive"
	// WhatTrustStore is a certificate that may not go into a trust store.
	WhatTrustStore = "trust store certificate"
	// WhatConfig is a deployment.toml that does not parse (set by the build, which
	// knows where a file lands).
	WhatConfig = "deployment.toml"
)

// VerifyError is a failed verification of an input: the CLI maps it to exit code 3.
// Network and I/O failures are plain errors, except an untrusted TLS certificate,
// which is a VerifyError with What "tls".
type VerifyError struct {
	// Profile and Field name the input; Source is its URL or path.
	Profile, Field, Source string
	// What was checked: "sha256", "sha512", "checksum", "gpg signature", "https",
	// "tls", "symlink", "local file", "size", "credentials in the URL", "archive …"
	// (with build/archive's What), "trust store certificate", "deployment.toml".
	What     string
	Expected string
	Found    string
	// Err is the underlying error, if any: a *archive.Error for a refused archive, a
	// *truststore.CertError for a refused certificate, a *tomlcheck.Error for a
	// deployment.toml that does not parse.
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
