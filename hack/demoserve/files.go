package main

import (
	"archive/zip"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wso2img/wso2img/internal/trivydb"
)

// Paths of the demo's other downloads.
const (
	carPath      = "/releases/acme-orders/1.0.0/acme-orders_1.0.0.car"
	log4jBadPath = "/maven2/org/apache/logging/log4j/log4j-core/2.14.1/log4j-core-2.14.1.jar"
	log4jFixPath = "/maven2/org/apache/logging/log4j/log4j-core/2.17.1/log4j-core-2.17.1.jar"
)

// demoFiles serves the Carbon app and the two log4j-core jars, writes the trust store's
// CA certificates and the offline Trivy DB under dir, and returns their KEY=VALUE lines
// (BASE_URL stands for the site's address).
func demoFiles(dir string, serve func(string, []byte)) (string, error) {
	var env []string
	add := func(key, path string, body []byte) {
		serve(path, body)
		sum := sha256.Sum256(body)
		env = append(env, key+"_URL=BASE_URL"+path, key+"_SHA256="+hex.EncodeToString(sum[:]))
	}
	car, err := carbonApp()
	if err != nil {
		return "", fmt.Errorf("making the Carbon app: %w", err)
	}
	add("CAR", carPath, car)
	for key, p := range map[string]struct{ path, version string }{"LOG4J_BAD": {log4jBadPath, "2.14.1"}, "LOG4J_FIXED": {log4jFixPath, "2.17.1"}} {
		jar, err := trivydb.MavenJar("org.apache.logging.log4j", "log4j-core", p.version)
		if err != nil {
			return "", err
		}
		add(key, p.path, jar)
	}
	for i, cn := range []string{"Acme Partner Root CA", "Acme Corporate Root CA"} {
		file := filepath.Join(dir, fmt.Sprintf("trust-ca-%d.pem", i+1))
		if err := writeCA(file, cn); err != nil {
			return "", err
		}
		env = append(env, fmt.Sprintf("TRUST_CA%d=%s", i+1, file))
	}
	db := filepath.Join(dir, "trivy-db")
	if err := trivydb.Write(db, append(trivydb.Log4Shell.Advisories, trivydb.Musl.Advisories...),
		append(trivydb.Log4Shell.Vulnerabilities, trivydb.Musl.Vulnerabilities...)); err != nil {
		return "", fmt.Errorf("writing the offline Trivy DB: %w", err)
	}
	env = append(env, "SCAN_DB="+db)
	return strings.Join(env, "\n") + "\n", nil
}

// carbonApp is a Carbon application archive (a zip) with an API and a sequence, as the
// Micro Integrator and API Manager deploy them.
func carbonApp() ([]byte, error) {
	return makeZip(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), []zipEntry{
		{"artifacts.xml", "<artifacts><artifact name=\"acme-orders\" version=\"1.0.0\" type=\"carbon/application\">\n<dependency artifact=\"OrdersAPI\" version=\"1.0.0\"/>\n</artifact></artifacts>\n"},
		{"OrdersAPI_1.0.0/OrdersAPI-1.0.0.xml", "<api xmlns=\"http://ws.apache.org/ns/synapse\" name=\"OrdersAPI\" context=\"/orders\"><resource methods=\"GET\"><inSequence><respond/></inSequence></resource></api>\n"},
		{"OrdersAPI_1.0.0/artifact.xml", "<artifact name=\"OrdersAPI\" version=\"1.0.0\" type=\"synapse/api\"><file>OrdersAPI-1.0.0.xml</file></artifact>\n"},
	})
}

type zipEntry struct{ name, body string }

// makeZip is a deterministic zip (jar) of entries, every one modified at mod.
func makeZip(mod time.Time, entries []zipEntry) ([]byte, error) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: mod})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// writeCA writes a self-signed CA certificate, valid for a year, to file.
func writeCA(file, cn string) error {
	der, _, err := newCA(cn, 365*24*time.Hour)
	if err != nil {
		return err
	}
	return os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// newCA makes a self-signed CA certificate (DER) and its key, valid from an hour ago
// for as long as asked.
func newCA(cn string, valid time.Duration) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(valid), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}
