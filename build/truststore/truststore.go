// Package truststore writes the Java trust store a WSO2 product reads
// (client-truststore.jks or .p12) from PEM certificates, so an image can trust a
// company's CAs without `RUN keytool` in a build step. It owns parsing the PEM input,
// checking each certificate (valid at the build's time, a CA, no private key
// anywhere), naming the entries, and encoding JKS (github.com/pavlo-v-chernykh/
// keystore-go) or PKCS#12 (software.sslmate.com/src/go-pkcs12) byte for byte the same
// for the same certificates, aliases, password and time.
//
// It must not fetch anything, know about profiles, BuildKit or registries, or print.
//
// # Pointing the product at the store
//
// The product reads the trust store named by the [truststore] table of
// repository/conf/deployment.toml. Identity Server and API Manager resolve file_name
// against repository/resources/security:
//
//	[truststore]
//	file_name = "client-truststore.p12"
//	type = "PKCS12"                            # or "JKS" for a .jks
//	password = "$env{TRUSTSTORE_PASSWORD}"     # or the literal; default "wso2carbon"
//
// Micro Integrator (since its 2020-09-17 update) resolves file_name against the
// product home, and its stock table also names the key used for symmetric encryption:
//
//	[truststore]
//	file_name = "repository/resources/security/client-truststore.jks"
//	type = "JKS"
//	password = "wso2carbon"
//	alias = "symmetric.key.value"
//	algorithm = "AES"
//
// The stock store also holds public CAs and the product's own self-signed certificate
// (alias wso2carbon), which the server uses when it calls itself over HTTPS: a store
// built from a company's CAs alone must also hold the CA of the server's own TLS
// certificate. Sources: wso2/product-is (deployment.toml at v7.0.0 and v7.1.0),
// wso2/product-apim (v4.5.0 to v4.7.0), wso2/micro-integrator and docs-mi
// ("Configuring Keystores"), docs-is ("Configure Keystores").
package truststore

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	"golang.org/x/crypto/chacha20"
	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// Format is a trust store format, spelled as deployment.toml's type and keytool's
// -storetype spell it.
type Format string

// The formats Build writes.
const (
	JKS    Format = "JKS"
	PKCS12 Format = "PKCS12"
)

// FileName is the stock file name of a WSO2 trust store in this format.
func (f Format) FileName() string {
	if f == PKCS12 {
		return "client-truststore.p12"
	}
	return "client-truststore.jks"
}

// DefaultPassword is the password of WSO2's stock trust stores, used when none is
// given. It is public: a store that guards anything but public certificates needs its
// own.
const DefaultPassword = "wso2carbon"

// Cert is one certificate to trust.
type Cert struct {
	// Alias is the entry's name; "" derives one from the subject. Java treats aliases
	// case-insensitively, so they are written in lower case.
	Alias string
	Cert  *x509.Certificate
	// Source says where the certificate came from (a file name), for messages.
	Source string
}

// Options configure Build.
type Options struct {
	// Format is JKS or PKCS12; required (DefaultFormat gives the product's own).
	Format Format
	// Password protects the store's integrity; default DefaultPassword.
	Password string
	// Time is the build's time (the WSO2 update's): a JKS dates its entries with it.
	// Required, so that the output depends on nothing but the inputs.
	Time time.Time
	// ValidAt is when the certificates must be valid: the moment of building, since a
	// WUM update's time can be years back; default Time. It does not change the bytes.
	ValidAt time.Time
	// AllowExpired accepts certificates that are not valid at ValidAt.
	AllowExpired bool
	// AllowNonCA accepts certificates that are not CAs (a server's own certificate,
	// pinned).
	AllowNonCA bool
}

// Entry is one entry of a trust store.
type Entry struct {
	// Alias is the entry's name, in lower case.
	Alias string
	// Subject is the certificate's subject, as x509.Certificate.Subject prints it.
	Subject string
	// SHA256 is the certificate's fingerprint as keytool prints it: upper-case hex
	// bytes separated by colons.
	SHA256 string
	Cert   *x509.Certificate
}

// Build checks the certificates and encodes a trust store of them, entries sorted by
// alias. A refused certificate is a *CertError.
func Build(certs []Cert, opts Options) ([]byte, error) {
	if opts.Password == "" {
		opts.Password = DefaultPassword
	}
	entries, err := Entries(certs, opts)
	if err != nil {
		return nil, err
	}
	switch opts.Format {
	case JKS:
		return encodeJKS(entries, opts)
	case PKCS12:
		return encodePKCS12(entries, opts)
	}
	return nil, fmt.Errorf("building a trust store: format %q: expected JKS or PKCS12", opts.Format)
}

// Entries checks the certificates and names them as Build would, sorted by alias.
func Entries(certs []Cert, opts Options) ([]Entry, error) {
	if opts.Time.IsZero() {
		return nil, errors.New("building a trust store: no time given: the update's time decides which certificates are valid and dates the entries")
	}
	if len(certs) == 0 {
		return nil, errors.New("building a trust store: no certificates given")
	}
	seen := map[string]Cert{}
	var errs []error
	for _, c := range certs {
		if c.Cert == nil {
			return nil, fmt.Errorf("building a trust store: a certificate from %s is missing", c.Source)
		}
		fp := fingerprint(c.Cert)
		if first, ok := seen[fp]; ok {
			errs = append(errs, certErr(c, WhatDuplicate, "the same certificate is also listed from "+first.Source))
			continue
		}
		seen[fp] = c
		if err := check(c, opts); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return name(certs)
}

func check(c Cert, opts Options) error {
	at := opts.ValidAt
	if at.IsZero() {
		at = opts.Time
	}
	t := at.UTC().Format(time.RFC3339)
	switch {
	case !opts.AllowExpired && at.After(c.Cert.NotAfter):
		return certErr(c, WhatExpired, fmt.Sprintf("valid until %s, checked at %s", c.Cert.NotAfter.UTC().Format(time.RFC3339), t))
	case !opts.AllowExpired && at.Before(c.Cert.NotBefore):
		return certErr(c, WhatNotYetValid, fmt.Sprintf("valid from %s, checked at %s", c.Cert.NotBefore.UTC().Format(time.RFC3339), t))
	case !opts.AllowNonCA && !(c.Cert.BasicConstraintsValid && c.Cert.IsCA):
		return certErr(c, WhatNotCA, "its basic constraints do not say CA:TRUE; set allowNonCA to pin a server's own certificate")
	}
	return nil
}

// name gives every certificate its alias: given ones first (lower-cased, they must
// not collide), then derived ones, each group of equal names ordered by fingerprint
// and numbered -2, -3, … so that the result does not depend on the input's order.
func name(certs []Cert) ([]Entry, error) {
	taken := map[string]Cert{}
	var entries []Entry
	var derived []Entry
	for _, c := range certs {
		e := Entry{Subject: c.Cert.Subject.String(), SHA256: fingerprint(c.Cert), Cert: c.Cert}
		if c.Alias == "" {
			e.Alias = deriveAlias(c.Cert)
			derived = append(derived, e)
			continue
		}
		e.Alias = strings.ToLower(c.Alias)
		if strings.ContainsFunc(e.Alias, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, certErr(c, WhatAlias, fmt.Sprintf("alias %q has a control character", c.Alias))
		}
		if other, ok := taken[e.Alias]; ok {
			return nil, certErr(c, WhatAlias, fmt.Sprintf("alias %q is also given to the certificate from %s (aliases are case-insensitive)", c.Alias, other.Source))
		}
		taken[e.Alias] = c
		entries = append(entries, e)
	}
	sort.Slice(derived, func(i, j int) bool {
		if derived[i].Alias != derived[j].Alias {
			return derived[i].Alias < derived[j].Alias
		}
		return derived[i].SHA256 < derived[j].SHA256
	})
	for _, e := range derived {
		base := e.Alias
		for n := 2; ; n++ {
			if _, ok := taken[e.Alias]; !ok {
				break
			}
			e.Alias = fmt.Sprintf("%s-%d", base, n)
		}
		taken[e.Alias] = Cert{Cert: e.Cert, Source: "a derived alias"}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Alias < entries[j].Alias })
	return entries, nil
}

// deriveAlias is the subject's common name (else its organisation) in lower case,
// with every run of other characters than a-z, 0-9, '.', '_' and '-' made one '-'.
func deriveAlias(c *x509.Certificate) string {
	src := c.Subject.CommonName
	if src == "" && len(c.Subject.Organization) > 0 {
		src = c.Subject.Organization[0]
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(src) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	if a := strings.Trim(b.String(), "-._"); a != "" {
		return a
	}
	return "cert"
}

func encodeJKS(entries []Entry, opts Options) ([]byte, error) {
	ks := keystore.New(keystore.WithOrderedAliases())
	for _, e := range entries {
		err := ks.SetTrustedCertificateEntry(e.Alias, keystore.TrustedCertificateEntry{
			CreationTime: opts.Time,
			Certificate:  keystore.Certificate{Type: "X.509", Content: e.Cert.Raw},
		})
		if err != nil {
			return nil, fmt.Errorf("building a JKS trust store: entry %s: %w", e.Alias, err)
		}
	}
	var buf bytes.Buffer
	if err := ks.Store(&buf, []byte(opts.Password)); err != nil {
		return nil, fmt.Errorf("building a JKS trust store: %w", err)
	}
	return buf.Bytes(), nil
}

// encodePKCS12 writes a PKCS#12 trust store with go-pkcs12's Modern2023 encoder:
// PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and an HMAC-SHA-256 MAC, which OpenSSL 3,
// Java 11.0.12+ and Java 17 (WSO2's runtimes) read.
//
// The encoder draws its salts and IV from a random source. For the same store to come
// out byte for byte the same, it gets a ChaCha20 stream keyed with the sha256 of the
// entries (aliases, certificates) and the time. That is acceptable here: a trust store
// holds public certificates, so there is nothing secret for the encryption to hide,
// and the password only guards the store's integrity (the MAC), which a fixed salt
// does not weaken beyond allowing precomputation against this one set of
// certificates. The password is deliberately kept out of the seed: a salt derived
// from it would let anyone who can guess the certificates test passwords with one
// sha256 each.
func encodePKCS12(entries []Entry, opts Options) ([]byte, error) {
	h := sha256.New()
	h.Write([]byte("wso2img truststore pkcs12 v1\x00"))
	binary.Write(h, binary.BigEndian, opts.Time.UnixMilli())
	list := make([]pkcs12.TrustStoreEntry, len(entries))
	for i, e := range entries {
		binary.Write(h, binary.BigEndian, uint32(len(e.Alias)))
		h.Write([]byte(e.Alias))
		binary.Write(h, binary.BigEndian, uint32(len(e.Cert.Raw)))
		h.Write(e.Cert.Raw)
		list[i] = pkcs12.TrustStoreEntry{Cert: e.Cert, FriendlyName: e.Alias}
	}
	c, err := chacha20.NewUnauthenticatedCipher(h.Sum(nil), make([]byte, chacha20.NonceSize))
	if err != nil {
		return nil, fmt.Errorf("building a PKCS12 trust store: %w", err)
	}
	data, err := pkcs12.Modern2023.WithRand(stream{c}).EncodeTrustStoreEntries(list, opts.Password)
	if err != nil {
		return nil, fmt.Errorf("building a PKCS12 trust store: %w", err)
	}
	return data, nil
}

// stream reads a ChaCha20 key stream.
type stream struct{ c *chacha20.Cipher }

func (s stream) Read(p []byte) (int, error) {
	clear(p)
	s.c.XORKeyStream(p, p)
	return len(p), nil
}

// fingerprint is the sha256 of the certificate as keytool prints it.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}
