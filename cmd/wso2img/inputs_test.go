package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/buildkitd"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
)

const isHome = "/home/wso2carbon/wso2is-5.8.0"

// testCA makes a self-signed CA certificate, valid at the stand-in's update time (2019)
// and for long after, in PEM.
func testCA(t *testing.T, cn string) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Acme Corp"}},
		NotBefore:    time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// zipFile is a zip of name → content, in the order given.
func zipFile(t *testing.T, entries ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.Create(e[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tarGz is a tar.gz of the headers given (a regular file's content is its Linkname
// field's value, to keep the table short).
func tarGz(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, h := range hdrs {
		content := ""
		if h.Typeflag == tar.TypeReg {
			content, h.Linkname = h.Linkname, ""
			h.Size = int64(len(content))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInputsBuild: a zip of Carbon apps extracted into carbonapps, two trust stores
// (JKS and PKCS#12) made from two CAs of the test, and a deployment.toml that parses,
// all in the one added layer, readable with the Java tools.
func TestInputsBuild(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()

	apps := zipFile(t,
		[2]string{"orders_1.0.0.car", "PK orders carbon app"},
		[2]string{"billing/billing_2.1.0.car", "PK billing carbon app"})
	appsURL, appsSum := w.vendor.serve(t, "/releases/carbonapps-1.0.zip", apps, "good")
	rootCert, rootPEM := testCA(t, "Acme Root CA")
	issuingCert, issuingPEM := testCA(t, "Acme Issuing CA")
	w.file("certs/acme-root.pem", string(rootPEM), 0o644)
	issuingURL, issuingSum := w.vendor.serve(t, "/pki/acme-issuing.crt", issuingPEM, "")
	const toml = "[server]\nhostname = \"is.acme.example\"\n\n[truststore]\nfile_name = \"client-truststore.jks\"\ntype = \"JKS\"\npassword = \"$env{TRUSTSTORE_PASSWORD}\"\n"
	w.file("conf/deployment.toml", toml, 0o644)
	const password = "trust-me-9f3c1d"
	t.Setenv("TRUSTSTORE_PASSWORD", password)

	file := w.profile("acme-is.yaml", fmt.Sprintf(`extends: wso2is-5.8.0-alpine
update: {wum: 1565855673150}
inputs:
  - url: %s
    sha256: "%s"
    signature: %s.asc
    extract: true
    dest: repository/deployment/server/carbonapps
  - truststore:
      certificates:
        - path: certs/acme-root.pem
        - {url: %s, sha256: "%s", alias: acme-issuing}
      password: {env: TRUSTSTORE_PASSWORD}
  - truststore:
      certificates: [{path: certs/acme-root.pem}, {url: %s, sha256: "%s"}]
      format: PKCS12
    dest: repository/resources/security/p12/
  - path: conf/deployment.toml
    dest: repository/conf/deployment.toml
%s`, appsURL, appsSum, appsURL, issuingURL, issuingSum, issuingURL, issuingSum, w.vendor.gpgYAML()))

	r, out := w.build(t, bk, w.prefix+"/out", file)
	if r.code != 0 {
		t.Fatalf("build exit %d:\n%s", r.code, r.stderr)
	}
	for what, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(s, password) {
			t.Errorf("the trust store password appears on %s", what)
		}
	}
	img, _ := remoteImage(t, out[0].Image+"@"+out[0].Digest)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(cf); bytes.Contains(b, []byte(password)) {
		t.Error("the image config (labels, env, history) holds the trust store password")
	}
	layers, _ := img.Layers()
	files := layerFiles(t, layers[len(layers)-1])
	content := func(path string) []byte {
		t.Helper()
		h, ok := files[path]
		if !ok {
			t.Fatalf("%s is not in the added layer", path)
		}
		if h.Uid != 802 || h.Gid != 802 {
			t.Errorf("%s is owned by %d:%d, want 802:802", path, h.Uid, h.Gid)
		}
		return []byte(h.PAXRecords["content"])
	}

	// The Carbon apps, unpacked where the server deploys them.
	apps1 := isHome + "/repository/deployment/server/carbonapps"
	for path, want := range map[string]string{apps1 + "/orders_1.0.0.car": "PK orders carbon app", apps1 + "/billing/billing_2.1.0.car": "PK billing carbon app"} {
		if got := content(path); string(got) != want {
			t.Errorf("%s holds %q, want %q", path, got, want)
		}
		if m := files[path].Mode & 0o7777; m != 0o644 {
			t.Errorf("%s has mode %o, want 0644", path, m)
		}
	}
	if _, ok := files[apps1+"/carbonapps-1.0.zip"]; ok {
		t.Error("the archive itself was added next to what it holds")
	}
	if got := content(isHome + "/repository/conf/deployment.toml"); string(got) != toml {
		t.Errorf("deployment.toml = %q", got)
	}

	// The JKS store, read with keystore-go and with keytool.
	jks := content(isHome + "/repository/resources/security/client-truststore.jks")
	ks := keystore.New()
	if err := ks.Load(bytes.NewReader(jks), []byte(password)); err != nil {
		t.Fatalf("the JKS does not load with the password: %v", err)
	}
	var got []string
	for _, alias := range ks.Aliases() {
		e, err := ks.GetTrustedCertificateEntry(alias)
		if err != nil {
			t.Fatalf("entry %s: %v", alias, err)
		}
		c, err := x509.ParseCertificate(e.Certificate.Content)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, alias+"="+c.Subject.CommonName)
	}
	slices.Sort(got)
	if want := []string{"acme-issuing=Acme Issuing CA", "acme-root-ca=Acme Root CA"}; !slices.Equal(got, want) {
		t.Errorf("JKS entries = %q, want %q: the issuing CA under its alias, the root under one derived from its subject", got, want)
	}

	// The PKCS#12 store, read with go-pkcs12.
	p12 := content(isHome + "/repository/resources/security/p12/client-truststore.p12")
	certs, err := pkcs12.DecodeTrustStore(p12, "wso2carbon")
	if err != nil {
		t.Fatalf("the PKCS#12 store does not decode with the default password: %v", err)
	}
	var fps []string
	for _, c := range certs {
		fps = append(fps, hex.EncodeToString(sum256(c.Raw)))
	}
	slices.Sort(fps)
	want := []string{hex.EncodeToString(sum256(rootCert.Raw)), hex.EncodeToString(sum256(issuingCert.Raw))}
	slices.Sort(want)
	if !slices.Equal(fps, want) {
		t.Errorf("PKCS#12 certificates %v, want the two CAs %v", fps, want)
	}

	keytool := "/usr/bin/keytool"
	if _, err := os.Stat(keytool); err != nil {
		t.Logf("no %s: the stores were read with Go libraries only", keytool)
		return
	}
	for _, s := range []struct {
		data          []byte
		kind, pass    string
		aliasContains string
	}{{jks, "JKS", password, "acme-issuing"}, {p12, "PKCS12", "wso2carbon", "acme issuing ca"}} {
		p := filepath.Join(t.TempDir(), "store")
		if err := os.WriteFile(p, s.data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		outb, err := exec.CommandContext(ctx, keytool, "-list", "-v", "-keystore", p, "-storetype", s.kind, "-storepass", s.pass).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("keytool -list (%s): %v\n%s", s.kind, err, outb)
		}
		o := strings.ToLower(string(outb))
		if !strings.Contains(o, "your keystore contains 2 entries") || !strings.Contains(o, s.aliasContains) || strings.Count(o, "trustedcertentry") != 2 ||
			!strings.Contains(o, "cn=acme root ca") || !strings.Contains(o, "cn=acme issuing ca") {
			t.Errorf("keytool -list of the %s store:\n%s", s.kind, outb)
		}
	}
}

func sum256(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// TestInputsHostileArchives: an archive that would write outside its folder, link out
// of it, expand into a bomb or make a device is refused with exit code 3 before
// anything is built, and the registry is left as it was.
func TestInputsHostileArchives(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	bomb := func() []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		f, err := zw.Create("payload.car")
		if err != nil {
			t.Fatal(err)
		}
		zero := make([]byte, 1<<20)
		for range 64 { // 64 MiB of zeros: about 64 kB compressed
			f.Write(zero)
		}
		zw.Close()
		return buf.Bytes()
	}()
	for _, tc := range []struct {
		name, file string
		data       []byte
		has        []string
	}{
		{"zip slip", "slip.zip", zipFile(t, [2]string{"ok.car", "fine"}, [2]string{"../../../../../../tmp/evil.car", "x"}),
			[]string{"archive path", `entry "../../../../../../tmp/evil.car"`}},
		{"symlink out", "link.tar.gz", tarGz(t, &tar.Header{Name: "conf", Typeflag: tar.TypeSymlink, Linkname: "/etc"}),
			[]string{"archive symlink", `entry "conf"`}},
		{"symlink out, relative", "rel.tar.gz", tarGz(t, &tar.Header{Name: "a/up", Typeflag: tar.TypeSymlink, Linkname: "../../.."}),
			[]string{"archive symlink", `entry "a/up"`}},
		{"zip bomb", "bomb.zip", bomb, []string{"archive compression ratio", `entry "payload.car"`}},
		{"device", "dev.tar.gz", tarGz(t, &tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}),
			[]string{"archive special file", `entry "null"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, sum := w.vendor.serve(t, "/hostile/"+tc.file, tc.data, "")
			file := w.profile(strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)+".yaml", fmt.Sprintf(
				"extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {url: %s, sha256: \"%s\", extract: true, dest: repository/deployment/server/carbonapps}\n", url, sum))
			before, err := reg.Requests()
			if err != nil {
				t.Fatal(err)
			}
			r, out := w.build(t, bk, w.prefix+"/out", file)
			if r.code != 3 || len(out) != 0 {
				t.Fatalf("exit %d, results %+v; want 3 and nothing built:\n%s", r.code, out, r.stderr)
			}
			for _, s := range append(tc.has, "inputs[0] ("+url+")") {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
			after, err := reg.Requests()
			if err != nil {
				t.Fatal(err)
			}
			for _, rq := range after[len(before):] {
				if rq.Method != "GET" && rq.Method != "HEAD" {
					t.Errorf("a refused archive wrote to the registry: %s %s", rq.Method, rq.Path)
				}
				if strings.Contains(rq.Repository, "/out/") {
					t.Errorf("a refused archive touched the target: %s %s", rq.Method, rq.Path)
				}
			}
		})
	}
	t.Run("deployment.toml that does not parse", func(t *testing.T) {
		w.file("conf/deployment.toml", "[server]\nhostname = \"a\"\n\n[server]\noffset = 1\n", 0o644)
		file := w.profile("toml.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")
		before, _ := reg.Requests()
		r, out := w.build(t, bk, w.prefix+"/out", file)
		if r.code != 3 || len(out) != 0 {
			t.Fatalf("exit %d, want 3:\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "deployment.toml:4:") || !strings.Contains(r.stderr, "lines 1 and 4") {
			t.Errorf("stderr does not locate the duplicate table:\n%s", r.stderr)
		}
		after, _ := reg.Requests()
		for _, rq := range after[len(before):] {
			if rq.Method != "GET" && rq.Method != "HEAD" {
				t.Errorf("a bad deployment.toml wrote to the registry: %s %s", rq.Method, rq.Path)
			}
		}
	})
}

// TestInputsVerifiedIsBuilt: files swapped in the profile's folder and in the download
// cache after planning, before BuildKit reads them, do not reach the image: it holds
// the bytes that were verified (and that the SBOM lists).
func TestInputsVerifiedIsBuilt(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	jar := []byte("PK\x03\x04 the verified driver")
	jarURL, jarSum := w.vendor.serve(t, "/lib/driver.jar", jar, "")
	const toml = "[server]\nhostname = \"verified.example\"\n"
	w.file("conf/deployment.toml", toml, 0o644)
	w.file("webapps/console/index.html", "<h1>verified</h1>\n", 0o644)
	file := w.profile("p.yaml", fmt.Sprintf(`extends: wso2is-5.8.0-alpine
update: {wum: 1565855673150}
inputs:
  - {url: %s, sha256: "%s", dest: repository/components/lib/}
  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}
  - {path: webapps, dest: repository/deployment/server/webapps}
`, jarURL, jarSum))
	prof, err := profiles.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	opts := build.Options{
		Registry: registry.Options{Insecure: []string{reg.Host}, Mirrors: []registry.Mirror{{From: "docker.wso2.com", To: w.prefix}}},
		Inputs:   inputs.Options{CAFile: w.vendor.caFile, CacheDir: w.cache},
	}
	planner, err := build.NewPlanner(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plan, err := planner.Plan(ctx, prof)
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()

	// Swap everything the plan verified for other bytes of the same sizes.
	swap := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Repeat([]byte("!"), len(b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	swap(filepath.Join(w.cache, "blobs", "sha256", jarSum))
	swap(filepath.Join(w.dir, "conf", "deployment.toml"))
	swap(filepath.Join(w.dir, "webapps", "console", "index.html"))

	c, err := buildkitd.Connect(ctx, buildkitd.Options{Host: bk.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := filepath.Join(t.TempDir(), "oci")
	daemon := build.NewDaemon(opts, bk.Addr, c, nil)
	if _, err := daemon.Export(ctx, plan, build.Output{Kind: "oci", Path: dir}); err != nil {
		t.Fatal(err)
	}
	daemon.Wait()
	img := ociImage(t, dir)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, layers[len(layers)-1])
	for path, want := range map[string]string{
		isHome + "/repository/components/lib/driver.jar":                    string(jar),
		isHome + "/repository/conf/deployment.toml":                         toml,
		isHome + "/repository/deployment/server/webapps/console/index.html": "<h1>verified</h1>\n",
	} {
		h, ok := files[path]
		if !ok {
			t.Errorf("%s is not in the image", path)
			continue
		}
		if got := h.PAXRecords["content"]; got != want {
			t.Errorf("%s holds %q, want the verified %q", path, got, want)
		}
	}
	// What the SBOM would list is what the image holds.
	for _, in := range plan.Inputs {
		if in.Dir {
			continue
		}
		h := files[in.Dest]
		if h == nil || "sha256:"+hex.EncodeToString(sum256([]byte(h.PAXRecords["content"]))) != in.Digest {
			t.Errorf("%s in the image does not match the plan's digest %s", in.Dest, in.Digest)
		}
	}
	if err := plan.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(w.cache, "staging")); len(left) != 0 {
		t.Errorf("staging holds %v after Close", left)
	}
}

// ociImage is the one image of an OCI layout.
func ociImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("layout index %+v, %v", im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
