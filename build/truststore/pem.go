package truststore

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// ParsePEM reads the certificates of a PEM file (a bundle may hold several, with text
// between them), or of a single DER certificate, as CAs often publish them (.cer,
// .crt). A private key anywhere in it is refused: a trust store holds no keys, and a
// key in a build input is a leak waiting to happen. So is any other PEM block, and a
// file with no certificate. Errors are *CertError.
func ParsePEM(source string, data []byte) ([]Cert, error) {
	var certs []Cert
	rest := data
	blocks := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks++
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, &CertError{Source: source, What: WhatNotPEM, Detail: fmt.Sprintf("certificate %d does not parse", len(certs)+1), Err: err}
			}
			certs = append(certs, Cert{Cert: c, Source: source})
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, &CertError{Source: source, What: WhatPrivateKey,
				Detail: fmt.Sprintf("a %q block (block %d): a trust store holds certificates only; keep keys out of the image's inputs", b.Type, blocks)}
		default:
			return nil, &CertError{Source: source, What: WhatNotPEM, Detail: fmt.Sprintf("a %q block (block %d), expected CERTIFICATE blocks", b.Type, blocks)}
		}
	}
	if blocks == 0 {
		if c, err := x509.ParseCertificate(data); err == nil {
			return []Cert{{Cert: c, Source: source}}, nil
		}
		found := "no PEM block and no DER certificate"
		if bytes.Contains(data, []byte("PRIVATE KEY")) {
			return nil, &CertError{Source: source, What: WhatPrivateKey, Detail: "text that mentions a PRIVATE KEY; a trust store holds certificates only"}
		}
		return nil, &CertError{Source: source, What: WhatNoCertificate, Detail: found}
	}
	return certs, nil
}
