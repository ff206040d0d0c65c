package truststore

import "strings"

// What a CertError is about.
const (
	WhatExpired       = "expired"
	WhatNotYetValid   = "not yet valid"
	WhatNotCA         = "not a CA"
	WhatPrivateKey    = "private key"
	WhatNoCertificate = "no certificate"
	WhatNotPEM        = "not a certificate"
	WhatDuplicate     = "duplicate"
	WhatAlias         = "alias"
)

// CertError is a certificate (or a PEM file) that must not go into a trust store: the
// CLI maps it to exit code 3, an input that failed verification.
type CertError struct {
	// Source is where the certificate came from (a file name, an input's field).
	Source string
	// Subject and SHA256 name the certificate; both are "" when the problem is a
	// file without one.
	Subject string
	SHA256  string
	// What was wrong: one of the What constants.
	What   string
	Detail string
	// Err is the underlying error, if any.
	Err error
}

// Error is one line, e.g.
//
//	trust store certificate "CN=Old Root" (SHA256 4F:1A:…) from certs/old.pem: expired: valid until 2020-01-01T00:00:00Z, the build's time is 2024-05-01T00:00:00Z
func (e *CertError) Error() string {
	var b strings.Builder
	if e.Subject != "" || e.SHA256 != "" {
		b.WriteString("trust store certificate ")
		b.WriteString(quote(e.Subject))
		b.WriteString(" (SHA256 ")
		b.WriteString(e.SHA256)
		b.WriteString(")")
		if e.Source != "" {
			b.WriteString(" from ")
			b.WriteString(e.Source)
		}
	} else {
		b.WriteString("trust store input ")
		b.WriteString(e.Source)
	}
	b.WriteString(": ")
	b.WriteString(e.What)
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *CertError) Unwrap() error { return e.Err }

func certErr(c Cert, what, detail string) *CertError {
	return &CertError{Source: c.Source, Subject: c.Cert.Subject.String(), SHA256: fingerprint(c.Cert), What: what, Detail: detail}
}

func quote(s string) string { return `"` + s + `"` }
