// Command demoserve plays a vendor's download site for the demo: it makes a CA and a
// server certificate for 127.0.0.1, an OpenPGP signing key, a JDBC-driver-like jar and
// its detached signature, a Carbon application archive, two log4j-core jars (2.14.1,
// vulnerable to Log4Shell, and 2.17.1), and serves them over HTTPS on loopback. It also
// writes two CA certificates for the demo's trust store and an offline Trivy database
// that knows Log4Shell (the demo machine cannot download Trivy's), and a cosign key pair
// to sign the demo's images with (password $COSIGN_PASSWORD), made with cosign's library
// as `cosign generate-key-pair` makes it, so that the demo need not wait for the stock
// CLI's build. What a profile needs (URLs, sha256s, key fingerprint, keyring, CA file,
// paths) goes as KEY=VALUE lines to --env-file. It runs until interrupted.
//
// It is a development tool, not part of wso2img.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/sigstore/cosign/v2/pkg/cosign"
)

const jarPath = "/maven2/com/mysql/mysql-connector-j/8.0.33/mysql-connector-j-8.0.33.jar"

func main() {
	dir := flag.String("dir", ".state/demoserve", "folder for the CA, keyring and served files")
	envFile := flag.String("env-file", "", "write KEY=VALUE lines here once serving (default DIR/env)")
	flag.Parse()
	if *envFile == "" {
		*envFile = filepath.Join(*dir, "env")
	}
	if err := run(*dir, *envFile); err != nil {
		log.Fatalf("demoserve: %v", err)
	}
}

func run(dir, envFile string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ca, srvCert, err := makeTLS(dir)
	if err != nil {
		return fmt.Errorf("making certificates: %w", err)
	}
	jar, err := makeJar()
	if err != nil {
		return fmt.Errorf("making the jar: %w", err)
	}
	key, sig, err := signJar(dir, jar)
	if err != nil {
		return fmt.Errorf("signing the jar: %w", err)
	}
	cosignKey, cosignPub, err := makeCosignKey(dir)
	if err != nil {
		return fmt.Errorf("making the cosign key pair: %w", err)
	}

	mux := http.NewServeMux()
	serve := func(p string, body []byte) {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			log.Printf("demoserve: %s %s", r.Method, r.URL.Path)
			w.Header().Set("Content-Type", "application/octet-stream")
			_, _ = w.Write(body)
		})
	}
	serve(jarPath, jar)
	serve(jarPath+".asc", sig)
	extra, err := demoFiles(dir, serve)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{srvCert}, MinVersion: tls.VersionTLS12}}
	go func() {
		if err := srv.ServeTLS(ln, "", ""); err != nil && err != http.ErrServerClosed {
			log.Fatalf("demoserve: %v", err)
		}
	}()

	base := "https://" + ln.Addr().String()
	sum := sha256.Sum256(jar)
	env := strings.Join([]string{
		"JAR_URL=" + base + jarPath,
		"JAR_SIG_URL=" + base + jarPath + ".asc",
		"JAR_SHA256=" + hex.EncodeToString(sum[:]),
		"GPG_KEYRING=" + filepath.Join(dir, "vendor.asc"),
		"GPG_FINGERPRINT=" + strings.ToUpper(hex.EncodeToString(key.PrimaryKey.Fingerprint)),
		"CA_FILE=" + ca,
		"COSIGN_KEY=" + cosignKey,
		"COSIGN_PUB=" + cosignPub,
	}, "\n") + "\n" + strings.ReplaceAll(extra, "BASE_URL", base)
	if err := os.WriteFile(envFile+".tmp", []byte(env), 0o644); err != nil {
		return err
	}
	if err := os.Rename(envFile+".tmp", envFile); err != nil {
		return err
	}
	log.Printf("demoserve: serving %s on %s", jarPath, base)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}

// makeCosignKey writes an encrypted cosign key pair, DIR/cosign.key (password
// $COSIGN_PASSWORD) and DIR/cosign.pub, and returns their paths.
func makeCosignKey(dir string) (string, string, error) {
	pw, ok := os.LookupEnv("COSIGN_PASSWORD")
	if !ok {
		return "", "", fmt.Errorf("COSIGN_PASSWORD is not set: it is the password of the key pair")
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return []byte(pw), nil })
	if err != nil {
		return "", "", err
	}
	priv, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(priv, kb.PrivateBytes, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pub, kb.PublicBytes, 0o644); err != nil {
		return "", "", err
	}
	return priv, pub, nil
}

// makeTLS writes a CA certificate to DIR/ca.pem and returns it with a server
// certificate for 127.0.0.1 signed by it.
func makeTLS(dir string) (string, tls.Certificate, error) {
	caDER, caKey, err := newCA("wso2img demo CA", 24*time.Hour)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	now := time.Now()
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return "", tls.Certificate{}, err
	}
	return caFile, tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}, nil
}

// makeJar builds a small, deterministic jar shaped like a JDBC driver.
func makeJar() ([]byte, error) {
	return makeZip(time.Date(2023, 4, 18, 0, 0, 0, 0, time.UTC), []zipEntry{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Title: MySQL Connector/J (wso2img demo stand-in)\r\nImplementation-Version: 8.0.33\r\n\r\n"},
		{"META-INF/services/java.sql.Driver", "com.mysql.cj.jdbc.Driver\n"},
		{"com/mysql/cj/jdbc/Driver.class", "\xca\xfe\xba\xbe stand-in class file for the wso2img demo\n"},
	})
}

// signJar makes the vendor's signing key, writes its public keyring to DIR/vendor.asc
// and returns the key and an armored detached signature of jar.
func signJar(dir string, jar []byte) (*openpgp.Entity, []byte, error) {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA}
	key, err := openpgp.NewEntity("Demo Vendor Release Signing", "wso2img demo", "releases@vendor.example", cfg)
	if err != nil {
		return nil, nil, err
	}
	var pub bytes.Buffer
	aw, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := key.Serialize(aw); err != nil {
		return nil, nil, err
	}
	if err := aw.Close(); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "vendor.asc"), pub.Bytes(), 0o644); err != nil {
		return nil, nil, err
	}
	var sig bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&sig, key, bytes.NewReader(jar), cfg); err != nil {
		return nil, nil, err
	}
	return key, sig.Bytes(), nil
}
