package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testpgp"
)

// hostile is one bad profile, input or image, with what wso2img must answer.
type hostile struct {
	name string
	// profile is the YAML after the common head (extends, update), written as p.yaml;
	// setup, when set, prepares files first and may return the profile instead.
	profile string
	setup   func(t *testing.T, w *world) string
	// image, for verify cases: returns an image reference to verify.
	image func(t *testing.T, w *world) string
	code  int
	// want are substrings of stderr (or stdout, for verify's report).
	want []string
	// never appear anywhere (secrets).
	never []string
}

const hostileHead = "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\n"

// TestHostileInput is the corpus of bad profiles, inputs and images: each one gets a
// clear error with the exit code the README documents, and the registry is unchanged by
// every build that fails (no upload, manifest or tag written).
func TestHostileInput(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	goodURL, goodSum := w.vendor.serve(t, "/good.jar", []byte("the real jar"), "good")
	input := func(extra string) string {
		return fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: repository/components/lib/\n%s", goodURL, goodSum, extra)
	}
	serveArchive := func(t *testing.T, name string, data []byte) string {
		url, sum := w.vendor.serve(t, "/"+name, data, "")
		return fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    extract: true\n    dest: repository/deployment/server/carbonapps\n", url, sum)
	}

	cases := []hostile{
		// The loader refuses (exit 2) before anything is fetched.
		{name: "unknown field (typo)", profile: "inptus: []\n", code: 2, want: []string{`unknown field "inptus"`, `did you mean "inputs"`}},
		{name: "root user", profile: "user: {uid: 0, gid: 0}\n", code: 2, want: []string{"user.uid", "root"}},
		{name: "url without a checksum", profile: fmt.Sprintf("inputs:\n  - url: %s\n    dest: lib/\n", goodURL), code: 2, want: []string{"inputs[0].sha256", "checksum"}},
		{name: "malformed sha256", profile: fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"abc\"\n    dest: lib/\n", goodURL), code: 2, want: []string{"inputs[0].sha256"}},
		{name: "dest escapes the home with ..", profile: fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: ../../../etc/cron.d/x\n", goodURL, goodSum), code: 2, want: []string{"inputs[0].dest"}},
		{name: "absolute dest outside the home", profile: fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: /etc/passwd\n", goodURL, goodSum), code: 2, want: []string{"inputs[0].dest"}},
		{name: "two inputs on one path", profile: input(fmt.Sprintf("  - url: %s\n    sha256: \"%s\"\n    dest: repository/components/lib/good.jar\n", goodURL, goodSum)), code: 2, want: []string{"inputs[1].dest"}},
		{name: "secret env DB_PASSWORD", profile: "env: {DB_PASSWORD: x}\n", code: 2, want: []string{"env.DB_PASSWORD", "secret"}},
		{name: "secret env DBPASSWORD", profile: "env: {DBPASSWORD: x}\n", code: 2, want: []string{"env.DBPASSWORD", "secret"}},
		{name: "secret env dbPassword", profile: "env: {dbPassword: x}\n", code: 2, want: []string{"env.dbPassword", "secret"}},
		{name: "secret env MYSQL_PWD", profile: "env: {MYSQL_PWD: x}\n", code: 2, want: []string{"env.MYSQL_PWD", "secret"}},
		{name: "-D...Password= inside JAVA_OPTS", profile: "env: {JAVA_OPTS: \"-Xmx1g -Djavax.net.ssl.trustStorePassword=hunter2\"}\n", code: 2,
			want: []string{"env.JAVA_OPTS", "-Djavax.net.ssl.trustStorePassword=…"}, never: []string{"hunter2"}},
		{name: "reserved label", profile: "labels: {io.wso2img.rebuild-id: x}\n", code: 2, want: []string{"labels.io.wso2img.rebuild-id"}},
		{name: "duplicate key", profile: "ports: [9443]\nports: [22]\n", code: 2, want: []string{"ports", "written twice"}},
		{name: "credentials in the url", profile: fmt.Sprintf("inputs:\n  - url: https://deployer:hunter2@%s/x.jar\n    sha256: \"%s\"\n    dest: lib/\n", strings.TrimPrefix(w.vendor.srv.URL, "https://"), goodSum),
			code: 2, want: []string{"inputs[0]"}, never: []string{"hunter2"}},
		{name: "token in the url's query", profile: fmt.Sprintf("inputs:\n  - url: %s?access_token=hunter2\n    sha256: \"%s\"\n    dest: lib/\n", goodURL, goodSum),
			code: 2, want: []string{"inputs[0]", "access_token"}, never: []string{"hunter2"}},
		{name: "windows platform", profile: "platforms: [windows/amd64]\n", code: 2, want: []string{"platforms[0]"}},
		{name: "port out of range", profile: "ports: [0]\n", code: 2, want: []string{"ports[0]"}},
		{name: "setuid mode", profile: fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: lib/x\n    mode: \"4755\"\n", goodURL, goodSum), code: 2, want: []string{"inputs[0].mode"}},
		{name: "scan severity", profile: "scan: {severity: high}\n", code: 2, want: []string{"scan.severity"}},
		{name: "base cache not a prefix", profile: "baseCache: \"x y\"\n", code: 2, want: []string{"baseCache"}},
		{name: "aliases that expand a small file", setup: func(t *testing.T, w *world) string {
			var b strings.Builder
			b.WriteString(hostileHead + "x: &in {")
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(&b, "bogus%d: v, ", i)
			}
			b.WriteString("z: v}\ninputs: [")
			for i := 0; i < 1000; i++ {
				b.WriteString("*in,")
			}
			b.WriteString("*in]\n")
			return b.String()
		}, code: 2, want: []string{"more than"}},
		{name: "extends itself", setup: func(t *testing.T, w *world) string {
			w.file("loop.yaml", "extends: p.yaml\n", 0o644)
			return "extends: loop.yaml\nupdate: {wum: 1565855673150}\n"
		}, code: 2, want: []string{"extends"}},
		{name: "file input below another's file", profile: input(fmt.Sprintf("  - url: %s\n    sha256: \"%s\"\n    dest: repository/components/lib/good.jar/inner.jar\n", goodURL, goodSum)),
			code: 2, want: []string{"inputs[1].dest", "writes as a file"}},
		{name: "a file over a directory input's file", setup: func(t *testing.T, w *world) string {
			w.file("conf/deployment.toml", "[server]\n", 0o644)
			return hostileHead + fmt.Sprintf("inputs:\n  - path: conf\n    dest: repository/conf\n  - url: %s\n    sha256: \"%s\"\n    dest: repository/conf/deployment.toml\n", goodURL, goodSum)
		}, code: 2, want: []string{"also written by inputs[0]"}},

		// Inputs that fail verification (exit 3).
		{name: "checksum mismatch", profile: fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: lib/\n", goodURL, strings.Repeat("0", 64)), code: 3, want: []string{"sha256 mismatch"}},
		{name: "plain http", profile: fmt.Sprintf("inputs:\n  - url: http://127.0.0.1:9/x.jar\n    sha256: \"%s\"\n    dest: lib/\n", goodSum), code: 3, want: []string{"https"}},
		{name: "signature by a key not pinned", setup: func(t *testing.T, w *world) string {
			url, sum := w.vendor.serve(t, "/unpinned.jar", []byte("unpinned"), "unpinned")
			return hostileHead + fmt.Sprintf("inputs:\n  - url: %s\n    sha256: \"%s\"\n    signature: %s.asc\n    dest: lib/\n", url, sum, url) + w.vendor.gpgYAML()
		}, code: 3, want: []string{"gpg signature", "not pinned"}},
		{name: "signature made with SHA-1", setup: func(t *testing.T, w *world) string {
			rsa := testpgp.NewKey(t, "rsa-vendor", testpgp.RSA())
			data := []byte("sha1-signed jar")
			w.file("keys/rsa.asc", string(testpgp.ArmoredPublic(t, rsa)), 0o644)
			w.file("sha1.jar", string(data), 0o644)
			w.file("sha1.jar.asc", string(testpgp.Sign(t, rsa, data, true, testpgp.WithHash(crypto.SHA1))), 0o644)
			return hostileHead + fmt.Sprintf("inputs:\n  - path: sha1.jar\n    signature: sha1.jar.asc\n    dest: lib/\ngpg:\n  keyring: keys/rsa.asc\n  fingerprints: [%s]\n", testpgp.Fingerprint(rsa))
		}, code: 3, want: []string{"SHA-1", "refused"}},
		{name: "keyring with the key and, separately, its revocation", setup: func(t *testing.T, w *world) string {
			k := testpgp.NewKey(t, "twice")
			data := []byte("jar")
			w.file("keys/twice.asc", string(testpgp.ArmoredPublic(t, k))+string(testpgp.ArmoredPublic(t, testpgp.RevokedCopy(t, k))), 0o644)
			w.file("twice.jar", string(data), 0o644)
			w.file("twice.jar.asc", string(testpgp.Sign(t, k, data, true)), 0o644)
			return hostileHead + fmt.Sprintf("inputs:\n  - path: twice.jar\n    signature: twice.jar.asc\n    dest: lib/\ngpg:\n  keyring: keys/twice.asc\n  fingerprints: [%s]\n", testpgp.Fingerprint(k))
		}, code: 3, want: []string{"revoked"}},
		{name: "local symlink out of the profile folder", setup: func(t *testing.T, w *world) string {
			must(t, os.Symlink("/etc/hostname", filepath.Join(w.dir, "out.jar")))
			return hostileHead + "inputs:\n  - path: out.jar\n    dest: lib/\n"
		}, code: 3, want: []string{"symlink"}},
		{name: "directory input with a symlink out of the folder", setup: func(t *testing.T, w *world) string {
			w.file("webapp1/index.html", "x", 0o644)
			must(t, os.Symlink("/etc", filepath.Join(w.dir, "webapp1/etc")))
			return hostileHead + "inputs:\n  - path: webapp1\n    dest: repository/deployment/server/webapps/app\n"
		}, code: 3, want: []string{"symlink"}},
		{name: "directory input with a symlink out of the product home in the image", setup: func(t *testing.T, w *world) string {
			w.file("deep/a/b/webapp2/index.html", "x", 0o644)
			w.file("deep/a/etc/shadow-like", "inside the profile folder on the host", 0o644)
			must(t, os.Symlink("../../etc", filepath.Join(w.dir, "deep/a/b/webapp2/link")))
			return hostileHead + "inputs:\n  - path: deep/a/b/webapp2\n    dest: .\n"
		}, code: 3, want: []string{"symlink", "product home"}},
		{name: "special file in a directory input", setup: func(t *testing.T, w *world) string {
			w.file("webapp3/index.html", "x", 0o644)
			must(t, syscall.Mkfifo(filepath.Join(w.dir, "webapp3/pipe"), 0o644))
			return hostileHead + "inputs:\n  - path: webapp3\n    dest: repository/deployment/server/webapps/app3\n"
		}, code: 3, want: []string{"named pipe"}},
		{name: "hard link in a directory input", setup: func(t *testing.T, w *world) string {
			w.file("webapp4/index.html", "x", 0o644)
			w.file("elsewhere.txt", "a file with a second name", 0o644)
			must(t, os.Link(filepath.Join(w.dir, "elsewhere.txt"), filepath.Join(w.dir, "webapp4/linked.txt")))
			return hostileHead + "inputs:\n  - path: webapp4\n    dest: repository/deployment/server/webapps/app4\n"
		}, code: 3, want: []string{"hard link"}},
		{name: "zip-slip archive", setup: func(t *testing.T, w *world) string {
			return hostileHead + serveArchive(t, "slip.car", zipOf(t, map[string]string{"../../../../etc/cron.d/evil": "* * * * * root sh"}))
		}, code: 3, want: []string{"slip.car"}},
		{name: "archive with a symlink out", setup: func(t *testing.T, w *world) string {
			return hostileHead + serveArchive(t, "link.tar.gz", tarGzOf(t, []*tar.Header{{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "../../../../etc"}}))
		}, code: 3, want: []string{"link.tar.gz", "symlink"}},
		{name: "zip bomb", setup: func(t *testing.T, w *world) string {
			return hostileHead + serveArchive(t, "bomb.zip", zipOf(t, map[string]string{"zeros": strings.Repeat("\x00", 64<<20)}))
		}, code: 3, want: []string{"bomb.zip"}},
		{name: "archive with a device entry", setup: func(t *testing.T, w *world) string {
			return hostileHead + serveArchive(t, "dev.tar.gz", tarGzOf(t, []*tar.Header{{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}))
		}, code: 3, want: []string{"dev.tar.gz"}},
		{name: "deployment.toml that does not parse", setup: func(t *testing.T, w *world) string {
			w.file("conf/bad.toml", "[server]\nhostname = \"a\"\n[server]\n", 0o644)
			return hostileHead + "inputs:\n  - path: conf/bad.toml\n    dest: repository/conf/deployment.toml\n"
		}, code: 3, want: []string{"deployment.toml", "defined twice"}},
		{name: "trust store from an expired certificate", setup: func(t *testing.T, w *world) string {
			w.file("certs/old.pem", pemCert(t, "old CA", true, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)), 0o644)
			return hostileHead + "inputs:\n  - truststore:\n      certificates: [{path: certs/old.pem}]\n"
		}, code: 3, want: []string{"old CA", "expired"}},
		{name: "trust store from a certificate that is no CA", setup: func(t *testing.T, w *world) string {
			w.file("certs/leaf.pem", pemCert(t, "a server", false, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)), 0o644)
			return hostileHead + "inputs:\n  - truststore:\n      certificates: [{path: certs/leaf.pem}]\n"
		}, code: 3, want: []string{"a server", "CA"}},
		{name: "base digest other than the pinned one", profile: "base: {digest: \"sha256:" + strings.Repeat("b", 64) + "\"}\n", code: 3, want: []string{"base.digest"}},
		{name: "base index entry with no platform", setup: func(t *testing.T, w *world) string {
			img := signtest.Image(t, signtest.Config(), signtest.Files())
			idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img})
			signtest.Push(t, w.prefix+"/noplatform:5.8.0.1565855673150-alpine3.10", idx)
			return hostileHead + "base: {image: docker.wso2.com/noplatform}\nhome: /home/wso2carbon/wso2is-5.8.0\n"
		}, code: 3, want: []string{"no platform"}},

		// Images that verify must refuse (exit 4).
		{name: "verify: passwd line with leading spaces maps the user to uid 0", image: func(t *testing.T, w *world) string {
			cfg := signtest.Config()
			cfg.User = "wso2carbon"
			return pushFiles(t, w, "spaces", cfg, [][]signtest.File{{{Path: "etc", Dir: true, Mode: 0o755}, {Path: "etc/passwd", Mode: 0o644, Data: "root:x:0:0::/root:/bin/sh\n  wso2carbon:x:0:0::/:/bin/sh\n"}}})
		}, code: 4, want: []string{"uid 0"}},
		{name: "verify: symlinked passwd", image: func(t *testing.T, w *world) string {
			cfg := signtest.Config()
			cfg.User = "wso2carbon"
			return pushFiles(t, w, "pwlink", cfg, [][]signtest.File{signtest.Files(), {{Path: "etc/passwd", Symlink: "/tmp/pw"}}})
		}, code: 4, want: []string{"a symlink to /tmp/pw"}},
		{name: "verify: setuid through a hard link after its original is deleted", image: func(t *testing.T, w *world) string {
			return pushFiles(t, w, "hardlink", signtest.Config(), [][]signtest.File{
				append(signtest.Files(), signtest.File{Path: "bin", Dir: true, Mode: 0o755}, signtest.File{Path: "bin/su", Mode: 0o4755, Data: "su"}, signtest.File{Path: "opt", Dir: true, Mode: 0o755}, signtest.File{Path: "opt/x", HardLink: "bin/su"}),
				{{Path: "bin/su", Whiteout: true}}})
		}, code: 4, want: []string{"/opt/x", "hard link to /bin/su"}},
		{name: "verify: secret variable without underscores", image: func(t *testing.T, w *world) string {
			cfg := signtest.Config()
			cfg.Env = append(cfg.Env, "DBPASSWORD=hunter2")
			return pushFiles(t, w, "envsecret", cfg, [][]signtest.File{signtest.Files()})
		}, code: 4, want: []string{"DBPASSWORD"}, never: []string{"hunter2"}},
		{name: "verify: index entry with no platform", image: func(t *testing.T, w *world) string {
			idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: signtest.Image(t, signtest.Config(), signtest.Files())})
			return signtest.Push(t, w.prefix+"/verify-noplatform:1", idx).String()
		}, code: 4, want: []string{"no platform"}},
	}
	if len(cases) < 40 {
		t.Fatalf("the corpus has %d cases; it must keep at least 40", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r result
			if tc.image != nil {
				ref := tc.image(t, w)
				r = runCLI(t, "verify", "--insecure-registry", reg.Host, "--insecure-skip-signature", ref)
			} else {
				w.dir = t.TempDir()
				body := hostileHead + tc.profile
				if tc.setup != nil {
					body = tc.setup(t, w)
				}
				file := w.profile("p.yaml", body)
				before := writesTo(t, w)
				r = runCLI(t, append([]string{"build", "--progress", "quiet", "--buildkit-host", bk.Addr, "--registry", w.prefix + "/out"}, append(w.flags(), file)...)...)
				if after := writesTo(t, w); after != before {
					t.Errorf("the failed build wrote to the registry (%d writes before, %d after)", before, after)
				}
			}
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tc.code, r.stdout, r.stderr)
			}
			out := r.stdout + r.stderr
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			for _, secret := range tc.never {
				if strings.Contains(out, secret) {
					t.Errorf("output shows %q:\n%s", secret, out)
				}
			}
		})
	}
}

// writesTo counts the registry's write requests (uploads, manifests, tags) under the
// test's target prefix.
func writesTo(t *testing.T, w *world) int {
	t.Helper()
	reqs, err := w.reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	prefix := strings.TrimPrefix(w.prefix, w.reg.Host+"/") + "/out"
	for _, rq := range reqs {
		if rq.Method != "GET" && rq.Method != "HEAD" && strings.HasPrefix(rq.Repository, prefix) {
			n++
		}
	}
	return n
}

func pushFiles(t *testing.T, w *world, name string, cfg v1Config, layers [][]signtest.File) string {
	t.Helper()
	return signtest.Push(t, w.prefix+"/"+name+":1", signtest.Image(t, cfg, layers...)).String()
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, content := range files {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		must(t, err)
		_, err = f.Write([]byte(content))
		must(t, err)
	}
	must(t, zw.Close())
	return b.Bytes()
}

func tarGzOf(t *testing.T, headers []*tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, h := range headers {
		must(t, tw.WriteHeader(h))
	}
	must(t, tw.Close())
	must(t, gz.Close())
	return b.Bytes()
}

// pemCert makes a self-signed certificate, a CA or not, valid between the two times.
func pemCert(t *testing.T, cn string, isCA bool, from, until time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: from, NotAfter: until, BasicConstraintsValid: true, IsCA: isCA, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

type v1Config = v1.Config

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
