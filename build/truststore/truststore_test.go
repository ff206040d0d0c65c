package truststore_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/wso2img/wso2img/build/truststore"
)

// The WSO2 update's time the tests build at.
var when = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

type certSpec struct {
	cn        string
	org       string
	from, to  time.Time
	ca        bool
	noBCValid bool
}

var serial int64

func newCert(t *testing.T, s certSpec) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if s.from.IsZero() {
		s.from = when.AddDate(-1, 0, 0)
	}
	if s.to.IsZero() {
		s.to = when.AddDate(5, 0, 0)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: s.cn, Organization: nonEmpty(s.org)},
		NotBefore:             s.from,
		NotAfter:              s.to,
		BasicConstraintsValid: !s.noBCValid,
		IsCA:                  s.ca,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func fp(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// twoCAs parses a bundle of two CAs made in the test, as a user would hand it over.
func twoCAs(t *testing.T) []truststore.Cert {
	t.Helper()
	_, root, _ := newCert(t, certSpec{cn: "Acme Root CA G2", ca: true})
	_, issuing, _ := newCert(t, certSpec{cn: "acme issuing/ca #1", ca: true})
	bundle := append(append([]byte("# Acme CAs\n"), root...), issuing...)
	certs, err := truststore.ParsePEM("certs/acme.pem", bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 {
		t.Fatalf("parsed %d certificates, want 2", len(certs))
	}
	return certs
}

func TestBuildReadsBack(t *testing.T) {
	certs := twoCAs(t)
	for _, format := range []truststore.Format{truststore.JKS, truststore.PKCS12} {
		t.Run(string(format), func(t *testing.T) {
			opts := truststore.Options{Format: format, Time: when}
			data, err := truststore.Build(certs, opts)
			if err != nil {
				t.Fatal(err)
			}
			entries, err := truststore.Entries(certs, opts)
			if err != nil {
				t.Fatal(err)
			}
			var aliases []string
			for _, e := range entries {
				aliases = append(aliases, e.Alias)
			}
			if want := []string{"acme-issuing-ca-1", "acme-root-ca-g2"}; !reflect.DeepEqual(aliases, want) {
				t.Fatalf("aliases %v, want %v", aliases, want)
			}
			switch format {
			case truststore.JKS:
				ks := keystore.New(keystore.WithOrderedAliases())
				if err := ks.Load(bytes.NewReader(data), []byte(truststore.DefaultPassword)); err != nil {
					t.Fatal(err)
				}
				if got := ks.Aliases(); !reflect.DeepEqual(got, aliases) {
					t.Fatalf("the store holds %v, want %v", got, aliases)
				}
				for _, e := range entries {
					tce, err := ks.GetTrustedCertificateEntry(e.Alias)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(tce.Certificate.Content, e.Cert.Raw) || tce.Certificate.Type != "X.509" {
						t.Errorf("%s holds another certificate (%s)", e.Alias, tce.Certificate.Type)
					}
					if !tce.CreationTime.Equal(when) {
						t.Errorf("%s is dated %v, want %v", e.Alias, tce.CreationTime, when)
					}
				}
				if err := ks.Load(bytes.NewReader(data), []byte("wrong-password")); err == nil {
					t.Error("the store opens with a wrong password: no integrity check")
				}
			case truststore.PKCS12:
				got, err := pkcs12.DecodeTrustStore(data, truststore.DefaultPassword)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 2 || !got[0].Equal(entries[0].Cert) || !got[1].Equal(entries[1].Cert) {
					t.Fatalf("the store holds %d certificates, not the two, in alias order", len(got))
				}
				if _, err := pkcs12.DecodeTrustStore(data, "wrong-password"); err == nil {
					t.Error("the store opens with a wrong password: no integrity check")
				}
			}
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	certs := twoCAs(t)
	reversed := []truststore.Cert{certs[1], certs[0]}
	for _, format := range []truststore.Format{truststore.JKS, truststore.PKCS12} {
		t.Run(string(format), func(t *testing.T) {
			opts := truststore.Options{Format: format, Time: when, Password: "s3cret-pass"}
			a, err := truststore.Build(certs, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := truststore.Build(certs, opts)
			c, _ := truststore.Build(reversed, opts)
			if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
				t.Fatal("the same certificates, password and time gave different bytes")
			}
			later := opts
			later.Time = when.Add(time.Hour)
			if d, _ := truststore.Build(certs, later); bytes.Equal(a, d) {
				t.Error("another time gave the same bytes")
			}
			other := opts
			other.Password = "another-pass"
			if d, _ := truststore.Build(certs, other); bytes.Equal(a, d) {
				t.Error("another password gave the same bytes")
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	ok, _, _ := newCert(t, certSpec{cn: "Good CA", ca: true})
	expired, _, _ := newCert(t, certSpec{cn: "Old CA", ca: true, from: when.AddDate(-10, 0, 0), to: when.AddDate(-1, 0, 0)})
	early, _, _ := newCert(t, certSpec{cn: "Future CA", ca: true, from: when.AddDate(0, 1, 0)})
	leaf, _, _ := newCert(t, certSpec{cn: "server.acme.test"})
	noBC, _, _ := newCert(t, certSpec{cn: "No Constraints", ca: true, noBCValid: true})
	tests := []struct {
		name   string
		certs  []truststore.Cert
		opts   truststore.Options
		what   string
		cert   *x509.Certificate
		detail string
	}{
		{"expired", []truststore.Cert{{Cert: ok, Source: "a.pem"}, {Cert: expired, Source: "old.pem"}}, truststore.Options{}, truststore.WhatExpired, expired, "valid until 2023-05-01T12:00:00Z, checked at 2024-05-01T12:00:00Z"},
		{"not yet valid", []truststore.Cert{{Cert: early, Source: "f.pem"}}, truststore.Options{}, truststore.WhatNotYetValid, early, "valid from 2024-06-01"},
		{"not a CA", []truststore.Cert{{Cert: leaf, Source: "leaf.pem"}}, truststore.Options{}, truststore.WhatNotCA, leaf, "allowNonCA"},
		{"CA flag without basic constraints", []truststore.Cert{{Cert: noBC, Source: "n.pem"}}, truststore.Options{}, truststore.WhatNotCA, noBC, ""},
		{"not a CA, although expired is allowed", []truststore.Cert{{Cert: leaf, Source: "leaf.pem"}}, truststore.Options{AllowExpired: true}, truststore.WhatNotCA, leaf, ""},
		{"the same certificate twice", []truststore.Cert{{Cert: ok, Source: "a.pem"}, {Cert: ok, Source: "bundle.pem"}}, truststore.Options{}, truststore.WhatDuplicate, ok, "also listed from a.pem"},
		{"colliding aliases", []truststore.Cert{{Cert: ok, Alias: "corp", Source: "a.pem"}, {Cert: early, Alias: "CORP", Source: "b.pem"}}, truststore.Options{AllowExpired: true}, truststore.WhatAlias, early, "case-insensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format, tt.opts.Time = truststore.JKS, when
			_, err := truststore.Build(tt.certs, tt.opts)
			var ce *truststore.CertError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *CertError", err)
			}
			if ce.What != tt.what || ce.SHA256 != fp(tt.cert) || ce.Subject != tt.cert.Subject.String() {
				t.Errorf("got %q about %q (%s), want %q about %q", ce.What, ce.Subject, ce.SHA256, tt.what, tt.cert.Subject)
			}
			if !strings.Contains(ce.Detail, tt.detail) {
				t.Errorf("detail %q, want it to contain %q", ce.Detail, tt.detail)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.cert.Subject.String()) || !strings.Contains(msg, fp(tt.cert)) {
				t.Errorf("the message does not name the certificate: %s", msg)
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		certs := []truststore.Cert{{Cert: expired}, {Cert: early}, {Cert: leaf}}
		if _, err := truststore.Build(certs, truststore.Options{Format: truststore.PKCS12, Time: when, AllowExpired: true, AllowNonCA: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("every refusal at once", func(t *testing.T) {
		_, err := truststore.Build([]truststore.Cert{{Cert: expired}, {Cert: leaf}}, truststore.Options{Format: truststore.JKS, Time: when})
		if err == nil || !strings.Contains(err.Error(), "Old CA") || !strings.Contains(err.Error(), "server.acme.test") {
			t.Fatalf("got %v, want both certificates named", err)
		}
	})
	t.Run("no time", func(t *testing.T) {
		_, err := truststore.Build([]truststore.Cert{{Cert: ok}}, truststore.Options{Format: truststore.JKS})
		if err == nil || !strings.Contains(err.Error(), "no time given") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		_, err := truststore.Build([]truststore.Cert{{Cert: ok}}, truststore.Options{Format: "JCEKS", Time: when})
		if err == nil || !strings.Contains(err.Error(), `format "JCEKS": expected JKS or PKCS12`) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAliases(t *testing.T) {
	a, _, _ := newCert(t, certSpec{cn: "Twin CA", ca: true})
	b, _, _ := newCert(t, certSpec{cn: "twin ca", ca: true})
	c, _, _ := newCert(t, certSpec{cn: "Twin CA", ca: true})
	o, _, _ := newCert(t, certSpec{org: "Only Org, Inc.", ca: true})
	x, _, _ := newCert(t, certSpec{cn: "***", ca: true})
	g, _, _ := newCert(t, certSpec{cn: "Given", ca: true})
	byFP := []*x509.Certificate{a, b, c}
	sort.Slice(byFP, func(i, j int) bool { return fp(byFP[i]) < fp(byFP[j]) })
	// "Twin-CA" is given to g, so the three derived twins are numbered by fingerprint.
	want := map[string]*x509.Certificate{"twin-ca": g, "twin-ca-2": byFP[0], "twin-ca-3": byFP[1], "twin-ca-4": byFP[2], "only-org-inc": o, "cert": x}
	in := []truststore.Cert{{Cert: a}, {Cert: b}, {Cert: c}, {Cert: o}, {Cert: x}, {Cert: g, Alias: "Twin-CA"}}
	for _, order := range [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 0, 5, 1, 4, 3}} {
		var certs []truststore.Cert
		for _, i := range order {
			certs = append(certs, in[i])
		}
		entries, err := truststore.Entries(certs, truststore.Options{Time: when})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*x509.Certificate{}
		var aliases []string
		for _, e := range entries {
			got[e.Alias] = e.Cert
			aliases = append(aliases, e.Alias)
		}
		if !sort.StringsAreSorted(aliases) {
			t.Errorf("entries not sorted by alias: %v", aliases)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("order %v: aliases %v", order, aliases)
		}
	}
}

func TestParsePEM(t *testing.T) {
	ca, caPEM, key := newCert(t, certSpec{cn: "CA", ca: true})
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")})
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte("x")})
	tests := []struct {
		name   string
		data   []byte
		n      int
		what   string
		detail string
	}{
		{"one certificate", caPEM, 1, "", ""},
		{"DER", ca.Raw, 1, "", ""},
		{"key after the certificate", append(append([]byte{}, caPEM...), keyPEM...), 0, truststore.WhatPrivateKey, `"PRIVATE KEY" block (block 2)`},
		{"EC key", ecPEM, 0, truststore.WhatPrivateKey, "EC PRIVATE KEY"},
		{"a request", csrPEM, 0, truststore.WhatNotPEM, "CERTIFICATE REQUEST"},
		{"text", []byte("hello"), 0, truststore.WhatNoCertificate, "no PEM block and no DER certificate"},
		{"broken certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), 0, truststore.WhatNotPEM, "does not parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := truststore.ParsePEM("in.pem", tt.data)
			if tt.what == "" {
				if err != nil || len(certs) != tt.n || !certs[0].Cert.Equal(ca) || certs[0].Source != "in.pem" {
					t.Fatalf("got %d certificates, %v", len(certs), err)
				}
				return
			}
			var ce *truststore.CertError
			if !errors.As(err, &ce) || ce.What != tt.what || !strings.Contains(ce.Detail, tt.detail) {
				t.Fatalf("got %v, want %q containing %q", err, tt.what, tt.detail)
			}
			if !strings.HasPrefix(err.Error(), "trust store input in.pem: ") {
				t.Errorf("the message does not name the file: %v", err)
			}
		})
	}
}

func TestDefaultFormat(t *testing.T) {
	tests := []struct {
		product, version string
		want             truststore.Format
		why              string
	}{
		{"wso2is", "5.8.0", truststore.JKS, "client-truststore.jks"},
		{"wso2is", "7.0.0", truststore.JKS, "7.1.0 and later use PKCS12"},
		{"wso2is", "7.1.0", truststore.PKCS12, "since 7.1.0"},
		{"wso2is", "7.3.0.0", truststore.PKCS12, "client-truststore.p12"},
		{"wso2is", "latest", truststore.JKS, "not a version"},
		{"wso2am", "4.5.0", truststore.JKS, "checked up to 4.7.0"},
		{"wso2am-universal-gw", "4.5.0", truststore.JKS, "API Manager"},
		{"wso2mi", "4.4.0", truststore.JKS, "Micro Integrator"},
		{"acme", "1.0", truststore.JKS, "not one wso2img knows"},
	}
	for _, tt := range tests {
		got, why := truststore.DefaultFormat(tt.product, tt.version)
		if got != tt.want || !strings.Contains(why, tt.why) {
			t.Errorf("DefaultFormat(%q, %q) = %s, %q; want %s, containing %q", tt.product, tt.version, got, why, tt.want, tt.why)
		}
	}
	if truststore.PKCS12.FileName() != "client-truststore.p12" || truststore.JKS.FileName() != "client-truststore.jks" {
		t.Error("file names")
	}
}

// TestKeytool reads both formats back with the JDK's keytool, which is what the
// product's JVM will do.
func TestKeytool(t *testing.T) {
	keytool, err := exec.LookPath("keytool")
	if err != nil {
		t.Skip("keytool is not installed (install a JDK to run this test): ", err)
	}
	certs := twoCAs(t)
	for _, format := range []truststore.Format{truststore.JKS, truststore.PKCS12} {
		t.Run(string(format), func(t *testing.T) {
			opts := truststore.Options{Format: format, Time: when}
			data, err := truststore.Build(certs, opts)
			if err != nil {
				t.Fatal(err)
			}
			entries, _ := truststore.Entries(certs, opts)
			file := filepath.Join(t.TempDir(), format.FileName())
			if err := os.WriteFile(file, data, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(keytool, "-list", "-keystore", file, "-storepass", truststore.DefaultPassword, "-storetype", string(format))
			cmd.Env = append(os.Environ(), "LC_ALL=C", "JAVA_TOOL_OPTIONS=-Duser.language=en")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("keytool: %v\n%s", err, out)
			}
			got := parseKeytool(string(out))
			want := map[string]string{}
			for _, e := range entries {
				want[e.Alias] = e.SHA256
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("keytool lists %v, want %v\n%s", got, want, out)
			}
			if !strings.Contains(string(out), "trustedCertEntry") || !strings.Contains(string(out), "Your keystore contains 2 entries") {
				t.Errorf("keytool does not see two trusted certificate entries:\n%s", out)
			}
		})
	}
}

// parseKeytool reads `keytool -list`: an "alias, date, trustedCertEntry," line, then
// "Certificate fingerprint (SHA-256): AB:CD:…".
func parseKeytool(out string) map[string]string {
	got := map[string]string{}
	alias := ""
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasSuffix(line, "trustedCertEntry,") {
			alias, _, _ = strings.Cut(line, ",")
		}
		if fpr, ok := strings.CutPrefix(line, "Certificate fingerprint (SHA-256): "); ok && alias != "" {
			got[alias] = fpr
			alias = ""
		}
	}
	return got
}

// TestValidAt: certificates are checked at ValidAt (the moment of building) while the
// store's entries keep the update's time: a CA issued after a WUM update of 2019 goes
// into an image of that update, and a CA that has expired since does not.
func TestValidAt(t *testing.T) {
	fresh, _, _ := newCert(t, certSpec{cn: "Fresh CA", ca: true, from: when.AddDate(0, 1, 0), to: when.AddDate(2, 0, 0)})
	gone, _, _ := newCert(t, certSpec{cn: "Gone CA", ca: true, from: when.AddDate(-2, 0, 0), to: when.AddDate(0, 0, -1)})
	old := when.AddDate(-5, 0, 0)
	opts := truststore.Options{Format: truststore.JKS, Time: old, ValidAt: when.AddDate(0, 2, 0)}
	a, err := truststore.Build([]truststore.Cert{{Cert: fresh, Source: "fresh.pem"}}, opts)
	if err != nil {
		t.Fatalf("a CA valid at ValidAt, issued after Time: %v", err)
	}
	opts.ValidAt = when.AddDate(0, 3, 0)
	b, _ := truststore.Build([]truststore.Cert{{Cert: fresh, Source: "fresh.pem"}}, opts)
	if !bytes.Equal(a, b) {
		t.Error("the bytes depend on ValidAt")
	}
	opts.Time, opts.ValidAt = when.AddDate(0, 0, -10), when
	var ce *truststore.CertError
	if _, err := truststore.Build([]truststore.Cert{{Cert: gone, Source: "gone.pem"}}, opts); !errors.As(err, &ce) || ce.What != truststore.WhatExpired {
		t.Errorf("a CA expired at ValidAt though valid at Time: %v", err)
	}
}
