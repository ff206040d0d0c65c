package build_test

import (
	"archive/zip"
	"bytes"
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
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	keystore "github.com/pavlo-v-chernykh/keystore-go/v4"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/archive"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/build/tomlcheck"
	"github.com/wso2img/wso2img/build/truststore"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
)

const home58 = "/home/wso2carbon/wso2is-5.8.0"

// planEnv is a registry holding a base for WSO2 IS 5.8.0, an https download site, a
// profile folder and a cache: what Planner.Plan needs, without BuildKit.
type planEnv struct {
	t       *testing.T
	host    string
	reg     registry.Options
	dir     string // the profile's folder
	cache   string
	site    *httptest.Server
	caFile  string
	content map[string][]byte
}

func newPlanEnv(t *testing.T) *planEnv {
	t.Helper()
	e := &planEnv{t: t, dir: t.TempDir(), cache: t.TempDir(), content: map[string][]byte{}}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	e.host = strings.TrimPrefix(srv.URL, "http://")
	e.reg = registry.Options{Insecure: []string{e.host}}
	base, err := random.Image(256, 1)
	must(t, err)
	cf, err := base.ConfigFile()
	must(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"WSO2_SERVER_HOME=" + home58}
	base, err = mutate.ConfigFile(base, cf)
	must(t, err)
	r, err := e.reg.ParseReference(e.host + "/wso2is:5.8.0.1565855673150")
	must(t, err)
	must(t, remote.Write(r, base, e.reg.Remote(context.Background())...))

	e.site = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := e.content[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	e.site.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.site.StartTLS()
	t.Cleanup(e.site.Close)
	e.caFile = filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(e.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.site.Certificate().Raw}), 0o644))
	return e
}

// serve publishes b at path and returns its URL and sha256.
func (e *planEnv) serve(path string, b []byte) (string, string) {
	e.content[path] = b
	return e.site.URL + path, sha256hex(b)
}

// file writes a file under the profile's folder.
func (e *planEnv) file(rel string, b []byte) string {
	e.t.Helper()
	p := filepath.Join(e.dir, filepath.FromSlash(rel))
	must(e.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(e.t, os.WriteFile(p, b, 0o644))
	return p
}

// profile loads a profile of the stand-in base with these inputs (YAML list items).
func (e *planEnv) profile(inputsYAML string) *profiles.Profile {
	e.t.Helper()
	y := fmt.Sprintf("name: p\nproduct: wso2is\nversion: 5.8.0\nupdate: {wum: 1565855673150}\nbase: {image: %s/wso2is}\nuser: {uid: 802, gid: 802}\ninputs:\n%s", e.host, inputsYAML)
	file := e.file("p.yaml", []byte(y))
	p, err := profiles.Load(file)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *planEnv) planner(log io.Writer) *build.Planner {
	e.t.Helper()
	p, err := build.NewPlanner(build.Options{Registry: e.reg, Inputs: inputs.Options{CacheDir: e.cache, CAFile: e.caFile}, Log: log})
	must(e.t, err)
	return p
}

// plan plans prof and closes the plan when the test ends.
func (e *planEnv) plan(prof *profiles.Profile) (*build.Plan, error) {
	e.t.Helper()
	plan, err := e.planner(nil).Plan(context.Background(), prof)
	if plan != nil {
		e.t.Cleanup(func() {
			if err := plan.Close(); err != nil {
				e.t.Errorf("Close: %v", err)
			}
		})
	}
	return plan, err
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPlanBuildsWhatWasVerified: once a plan is made, changing the profile's files or
// the download cache changes nothing the build reads: the layer's local sources hold
// the verified bytes. (Before the stage, they named the profile's folder and the
// cache, and a file swapped in between was built while the SBOM listed the old hash.)
func TestPlanBuildsWhatWasVerified(t *testing.T) {
	e := newPlanEnv(t)
	jar := []byte("PK\x03\x04 the verified driver")
	url, sum := e.serve("/lib/driver.jar", jar)
	toml := []byte("[server]\nhostname = \"is.acme.example\"\n")
	conf := e.file("conf/deployment.toml", toml)
	page := e.file("webapps/console/index.html", []byte("<h1>verified</h1>\n"))
	prof := e.profile(fmt.Sprintf(`  - {url: %s, sha256: %q, dest: repository/components/lib/}
  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}
  - {path: webapps/console, dest: repository/deployment/server/webapps/console}
`, url, sum))
	plan, err := e.plan(prof)
	if err != nil {
		t.Fatal(err)
	}

	// Everything the plan verified is swapped for other bytes before the build reads it.
	evil := []byte("evil bytes, never verified")
	blob := filepath.Join(e.cache, "blobs", "sha256", sum)
	for _, p := range []string{blob, conf, page} {
		must(t, os.WriteFile(p, evil, 0o644))
	}

	layer := build.NewLayer(plan)
	stageDir := filepath.Join(e.cache, "staging")
	for name, folder := range layer.Locals {
		if !strings.HasPrefix(folder, stageDir+string(filepath.Separator)) {
			t.Errorf("local source %s reads %s, outside the plan's stage under %s", name, folder, stageDir)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for i, in := range plan.Inputs {
		if in.Dir {
			for _, f := range in.Files {
				if f.Type != "file" {
					continue
				}
				if got := sha256hex(read(filepath.Join(in.Local, f.Rel))); got != f.SHA256 {
					t.Errorf("inputs[%d] %s: the build reads sha256 %s, the plan verified %s", i, f.Rel, got, f.SHA256)
				}
			}
			continue
		}
		if got := "sha256:" + sha256hex(read(in.Local)); got != in.Digest {
			t.Errorf("inputs[%d]: the build reads %s (%s), the plan verified %s", i, in.Local, got, in.Digest)
		}
	}
	if got := read(plan.Inputs[0].Local); !bytes.Equal(got, jar) {
		t.Errorf("the jar the build reads = %q, want the verified %q", got, jar)
	}

	// The stage is private to the running user.
	for _, in := range plan.Inputs {
		dir := filepath.Dir(filepath.Dir(in.Local)) // <stage>/files/x or <stage>/trees/x
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("stage %s has mode %o, want 0700", dir, fi.Mode().Perm())
		}
	}
}

// TestPlanClose: Close removes the stage, once, also through a plan made by
// WithRelease; a failed plan leaves no stage behind.
func TestPlanClose(t *testing.T) {
	e := newPlanEnv(t)
	e.file("conf/a.xml", []byte("<a/>"))
	prof := e.profile("  - {path: conf/a.xml, dest: repository/conf/a.xml}\n")
	plan, err := e.planner(nil).Plan(context.Background(), prof)
	if err != nil {
		t.Fatal(err)
	}
	staged := plan.Inputs[0].Local
	if _, err := os.Stat(staged); err != nil {
		t.Fatalf("the staged copy is missing before Close: %v", err)
	}
	other := plan.WithRelease(2)
	must(t, other.Close())
	if _, err := os.Stat(staged); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the staged copy %s is still there after Close of a WithRelease copy (%v)", staged, err)
	}
	must(t, plan.Close())
	must(t, (*build.Plan)(nil).Close())

	// A plan that fails (a checksum mismatch here) leaves the staging folder empty.
	url, _ := e.serve("/x.jar", []byte("x"))
	bad := e.profile(fmt.Sprintf("  - {path: conf/a.xml, dest: repository/conf/a.xml}\n  - {url: %s, sha256: %q, dest: lib/}\n", url, strings.Repeat("0", 64)))
	if _, err := e.planner(nil).Plan(context.Background(), bad); err == nil {
		t.Fatal("a checksum mismatch planned")
	}
	left, err := os.ReadDir(filepath.Join(e.cache, "staging"))
	must(t, err)
	if len(left) != 0 {
		t.Errorf("staging holds %v after a closed and a failed plan, want nothing", left)
	}
}

// zipOf is a zip of name → content; a name ending in "/" is a directory.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		must(t, err)
		_, err = w.Write([]byte(content))
		must(t, err)
	}
	must(t, zw.Close())
	return buf.Bytes()
}

func TestPlanExtract(t *testing.T) {
	e := newPlanEnv(t)
	apps := zipOf(t, map[string]string{"orders_1.0.0.car": "car one", "billing/billing_2.0.0.car": "car two"})
	url, sum := e.serve("/apps.zip", apps)
	prof := e.profile(fmt.Sprintf("  - {url: %s, sha256: %q, extract: true, dest: repository/deployment/server/carbonapps}\n", url, sum))
	plan, err := e.plan(prof)
	if err != nil {
		t.Fatal(err)
	}
	in := plan.Inputs[0]
	if !in.Dir || in.Archive != "sha256:"+sum || in.Dest != home58+"/repository/deployment/server/carbonapps" {
		t.Errorf("input = dir %v, archive %s, dest %s; want a directory from sha256:%s at carbonapps", in.Dir, in.Archive, in.Dest, sum)
	}
	var files []string
	for _, f := range in.Files {
		if f.Type == "file" {
			files = append(files, fmt.Sprintf("%s %s", f.Rel, f.SHA256))
		}
	}
	want := []string{"billing/billing_2.0.0.car " + sha256hex([]byte("car two")), "orders_1.0.0.car " + sha256hex([]byte("car one"))}
	if strings.Join(files, "\n") != strings.Join(want, "\n") {
		t.Errorf("files = %q, want %q", files, want)
	}
	b, err := os.ReadFile(filepath.Join(in.Local, "billing", "billing_2.0.0.car"))
	if err != nil || string(b) != "car two" {
		t.Errorf("staged billing car = %q, %v", b, err)
	}

	// The same bytes added as a file are another image.
	asFile := e.profile(fmt.Sprintf("  - {url: %s, sha256: %q, dest: repository/deployment/server/carbonapps/}\n", url, sum))
	filePlan, err := e.plan(asFile)
	if err != nil {
		t.Fatal(err)
	}
	if filePlan.RebuildID == plan.RebuildID {
		t.Error("extracting an archive and adding it as a file give the same rebuild ID")
	}
	again, err := e.plan(prof)
	if err != nil {
		t.Fatal(err)
	}
	if again.RebuildID != plan.RebuildID {
		t.Errorf("the same profile gives rebuild IDs %s and %s", plan.RebuildID, again.RebuildID)
	}
}

func TestPlanExtractRefused(t *testing.T) {
	e := newPlanEnv(t)
	slip := zipOf(t, map[string]string{"../../escape.car": "x"})
	url, sum := e.serve("/slip.zip", slip)
	prof := e.profile(fmt.Sprintf("  - {url: %s, sha256: %q, extract: true, dest: repository/deployment/server/carbonapps}\n", url, sum))
	_, err := e.plan(prof)
	var ve *inputs.VerifyError
	var ae *archive.Error
	if !errors.As(err, &ve) || !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want a *inputs.VerifyError wrapping an *archive.Error", err, err)
	}
	if ae.What != archive.WhatPath || !strings.Contains(err.Error(), `"../../escape.car"`) || !strings.Contains(err.Error(), "inputs[0]") {
		t.Errorf("error = %v, want a path refusal naming the entry and the input", err)
	}
}

// newCA makes a self-signed CA certificate valid around the update's time (2019).
func newCA(t *testing.T, cn string, notAfter time.Time, isCA bool) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"Acme"}},
		NotBefore: time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestPlanTrustStore(t *testing.T) {
	e := newPlanEnv(t)
	far := time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)
	root := newCA(t, "Acme Root CA", far, true)
	issuing := newCA(t, "Acme Issuing CA", far, true)
	e.file("certs/root.pem", root)
	url, sum := e.serve("/pki/issuing.crt", issuing)
	const password = "s3cret-store-pass"
	t.Setenv("TS_PASSWORD", password)
	prof := e.profile(fmt.Sprintf(`  - truststore:
      certificates:
        - path: certs/root.pem
        - {url: %s, sha256: %q, alias: acme-issuing}
      password: {env: TS_PASSWORD}
`, url, sum))
	var logs bytes.Buffer
	plan, err := e.planner(&logs).Plan(context.Background(), prof)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plan.Close() })
	in := plan.Inputs[0]
	if in.Dir || in.Dest != home58+"/repository/resources/security/client-truststore.jks" || in.ModeString != "0644" {
		t.Errorf("trust store input = dir %v, dest %s, mode %s; want the JKS file IS 5.8.0 reads, 0644", in.Dir, in.Dest, in.ModeString)
	}
	if !strings.Contains(logs.String(), "trust store format JKS") {
		t.Errorf("log does not say which format was chosen and why:\n%s", logs.String())
	}
	ts := in.TrustStore
	if ts == nil || ts.Format != "JKS" || ts.Password != "env TS_PASSWORD" || len(ts.Certificates) != 2 || len(ts.Entries) != 2 {
		t.Fatalf("TrustStore = %+v", ts)
	}
	if ts.Certificates[1].Digest != "sha256:"+sum || ts.Certificates[1].Alias != "acme-issuing" {
		t.Errorf("certificates = %+v", ts.Certificates)
	}

	// The staged store is a JKS that opens with the password and holds both CAs.
	f, err := os.Open(in.Local)
	must(t, err)
	defer f.Close()
	ks := keystore.New()
	must(t, ks.Load(f, []byte(password)))
	aliases := ks.Aliases()
	if len(aliases) != 2 || !ks.IsTrustedCertificateEntry("acme-issuing") {
		t.Errorf("store aliases = %v, want two trusted certificates, one of them acme-issuing", aliases)
	}

	// The password's value is nowhere in what is recorded about the plan.
	j, err := json.Marshal(plan)
	must(t, err)
	labels, err := json.Marshal(plan.ImageLabels())
	must(t, err)
	for what, b := range map[string][]byte{"plan JSON": j, "labels": labels, "profile digest input": []byte(prof.Digest())} {
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("the %s holds the trust store password", what)
		}
	}

	// The rebuild ID follows where the password comes from, and the certificates.
	t.Setenv("TS_PASSWORD", "another-pass")
	other, err := e.plan(prof)
	must(t, err)
	defaultPass := e.profile(fmt.Sprintf(`  - truststore:
      certificates:
        - path: certs/root.pem
        - {url: %s, sha256: %q, alias: acme-issuing}
`, url, sum))
	def, err := e.plan(defaultPass)
	must(t, err)
	if def.RebuildID == plan.RebuildID || def.Inputs[0].TrustStore.Password != "default" {
		t.Errorf("a default password and one from $TS_PASSWORD give the same rebuild ID (%s)", def.RebuildID)
	}
	if other.RebuildID == plan.RebuildID {
		t.Error("another password gives the same store bytes and rebuild ID")
	}
	again, err := e.plan(defaultPass)
	must(t, err)
	if again.RebuildID != def.RebuildID || again.Inputs[0].Digest != def.Inputs[0].Digest {
		t.Error("the same trust store planned twice gives another store or rebuild ID: it is not reproducible")
	}
}

func TestPlanTrustStoreRefused(t *testing.T) {
	e := newPlanEnv(t)
	expired := newCA(t, "Old Root", time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC), true)
	leaf := newCA(t, "server.acme.example", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), false)
	e.file("certs/old.pem", expired)
	e.file("certs/leaf.pem", leaf)
	e.file("certs/key.pem", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	for _, tc := range []struct {
		file, what, field string
	}{
		{"old.pem", truststore.WhatExpired, "certificates[0]"},
		{"leaf.pem", truststore.WhatNotCA, "certificates[0]"},
		{"key.pem", truststore.WhatPrivateKey, "certificates[0]"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			prof := e.profile(fmt.Sprintf("  - truststore: {certificates: [{path: certs/%s}]}\n", tc.file))
			_, err := e.plan(prof)
			var ve *inputs.VerifyError
			var ce *truststore.CertError
			if !errors.As(err, &ve) || !errors.As(err, &ce) || ce.What != tc.what {
				t.Fatalf("error = %v, want a VerifyError about %q", err, tc.what)
			}
			if ve.What != inputs.WhatTrustStore || !strings.Contains(err.Error(), "inputs[0].truststore."+tc.field) || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("error %q does not name the certificate's field and file", err)
			}
		})
	}
	// allowExpired lets the expired CA in.
	prof := e.profile("  - truststore: {certificates: [{path: certs/old.pem}], allowExpired: true}\n")
	if _, err := e.plan(prof); err != nil {
		t.Errorf("allowExpired: %v", err)
	}
}

func TestPlanDeploymentTOML(t *testing.T) {
	e := newPlanEnv(t)
	bad := "[server]\nhostname = \"a\"\n\n[server]\nx = 1\n"
	e.file("conf/deployment.toml", []byte(bad))
	e.file("conf-dir/deployment.toml", []byte(bad))
	e.file("ok/deployment.toml", []byte("[server]\nhostname = \"a\"\n"))
	for _, tc := range []struct {
		name, input string
	}{
		{"file", "  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n"},
		{"file into a folder", "  - {path: conf/deployment.toml, dest: repository/conf/}\n"},
		{"directory", "  - {path: conf-dir, dest: repository/conf}\n"},
		{"micro integrator's place", "  - {path: conf/deployment.toml, dest: conf/deployment.toml}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.plan(e.profile(tc.input))
			var ve *inputs.VerifyError
			var te *tomlcheck.Error
			if !errors.As(err, &ve) || !errors.As(err, &te) {
				t.Fatalf("error = %v (%T), want a VerifyError wrapping a *tomlcheck.Error", err, err)
			}
			if te.Line != 4 || ve.What != inputs.WhatConfig || !strings.Contains(err.Error(), ":4:") || !strings.Contains(err.Error(), "lines 1 and 4") {
				t.Errorf("error %q (line %d), want line 4 and both lines of the duplicate table", err, te.Line)
			}
		})
	}
	if _, err := e.plan(e.profile("  - {path: ok/deployment.toml, dest: repository/conf/deployment.toml}\n  - {path: conf/deployment.toml, dest: repository/conf/other.toml}\n")); err != nil {
		t.Errorf("a good deployment.toml (and a bad TOML file elsewhere) refused: %v", err)
	}
}

// TestPlanMissingEnv: credentials or a password from a variable that is not set is a
// profile error, found before anything is fetched.
func TestPlanMissingEnv(t *testing.T) {
	e := newPlanEnv(t)
	e.file("certs/root.pem", newCA(t, "Root", time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), true))
	t.Setenv("UNSET_TOKEN", "")
	t.Setenv("UNSET_PASS", "")
	prof := e.profile(`  - {url: "https://127.0.0.1:1/x.jar", sha256: "` + strings.Repeat("a", 64) + `", dest: lib/, auth: {env: UNSET_TOKEN}}
  - truststore: {certificates: [{path: certs/root.pem}], password: {env: UNSET_PASS}}
`)
	_, err := e.plan(prof)
	var pe *profiles.Error
	if !errors.As(err, &pe) || len(pe.Problems) != 2 {
		t.Fatalf("error = %v, want a profile error with two problems", err)
	}
	if !strings.Contains(err.Error(), "inputs[0].auth.env: $UNSET_TOKEN is not set") || !strings.Contains(err.Error(), "inputs[1].truststore.password.env: $UNSET_PASS is not set") {
		t.Errorf("error = %v", err)
	}
}
