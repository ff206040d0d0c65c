package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/internal/testpgp"
)

// The end-to-end tests share one registry and one buildkitd, started on first use; each
// test works under its own repository prefix so that tests do not see each other.
var daemons struct {
	sync.Mutex
	dir string
	reg *testenv.Registry
	// vendor is a second registry, for the topology users have: WSO2's registry is not
	// theirs.
	vendor *testenv.Registry
	// proxy is a fault-injecting proxy in front of reg, for the fault matrix.
	proxy *netfault.Proxy
	bk    *testenv.Buildkitd
}

func TestMain(m *testing.M) {
	// Hermetic: a CI that runs these tests inside GitHub Actions must not have them write
	// its step outputs, or sign keyless with its token.
	for _, v := range []string{"GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "BUILDKIT_HOST", "DOCKER_CONFIG"} {
		os.Unsetenv(v)
	}
	code := m.Run()
	daemons.Lock()
	if daemons.bk != nil {
		daemons.bk.Close()
	}
	if daemons.reg != nil {
		daemons.reg.Close()
	}
	if daemons.vendor != nil {
		daemons.vendor.Close()
	}
	if daemons.proxy != nil {
		daemons.proxy.Close()
	}
	if daemons.dir != "" {
		os.RemoveAll(daemons.dir)
	}
	daemons.Unlock()
	os.Exit(code)
}

func sharedDir(t *testing.T) string {
	if daemons.dir == "" {
		dir, err := os.MkdirTemp("", "wso2img-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		daemons.dir = dir
	}
	return daemons.dir
}

// needRegistry starts (once) the loopback registry.
func needRegistry(t *testing.T) *testenv.Registry {
	t.Helper()
	testenv.Need(t, "registry")
	daemons.Lock()
	defer daemons.Unlock()
	if daemons.reg == nil {
		reg, err := testenv.StartRegistry(context.Background(), filepath.Join(sharedDir(t), "registry"))
		if err != nil {
			t.Fatal(err)
		}
		daemons.reg = reg
	}
	return daemons.reg
}

// needVendor starts (once) the second registry, which stands for WSO2's.
func needVendor(t *testing.T) *testenv.Registry {
	t.Helper()
	testenv.Need(t, "registry")
	daemons.Lock()
	defer daemons.Unlock()
	if daemons.vendor == nil {
		reg, err := testenv.StartRegistry(context.Background(), filepath.Join(sharedDir(t), "vendor-registry"))
		if err != nil {
			t.Fatal(err)
		}
		daemons.vendor = reg
	}
	return daemons.vendor
}

// needBuildkit starts (once) the registries and a buildkitd that reaches them over HTTP.
func needBuildkit(t *testing.T) (*testenv.Registry, *testenv.Buildkitd) {
	t.Helper()
	reg := needRegistry(t)
	vendor := needVendor(t)
	testenv.Need(t, "buildkitd")
	daemons.Lock()
	defer daemons.Unlock()
	if daemons.bk == nil {
		// BuildKit reaches a loopback registry over HTTP only where its config says so:
		// the fault proxy needs its own entry.
		p, err := netfault.StartProxy(context.Background(), reg.Host, netfault.Options{})
		if err != nil {
			t.Fatal(err)
		}
		daemons.proxy = p
		bk, err := testenv.StartBuildkitd(context.Background(), filepath.Join(sharedDir(t), "bk"), []string{reg.Host, vendor.Host, p.Host()})
		if err != nil {
			t.Fatal(err)
		}
		daemons.bk = bk
	}
	return reg, daemons.bk
}

// world is one test's corner of the registry: the official base pushed under its
// official repository name below a prefix that --mirror maps docker.wso2.com and
// registry.wso2.com to, and a target prefix for --registry.
type world struct {
	t      *testing.T
	reg    *testenv.Registry
	prefix string // HOST/t-<test>
	dir    string // the profile's folder
	cache  string
	vendor *vendor
}

func newWorld(t *testing.T, reg *testenv.Registry) *world {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	w := &world{t: t, reg: reg, prefix: reg.Host + "/t-" + name, dir: t.TempDir(), cache: t.TempDir()}
	w.vendor = newVendor(t)
	return w
}

// flags are what every command of a test needs to reach its registry and vendor.
func (w *world) flags() []string {
	return append(w.registryFlags(), "--ca-file", w.vendor.caFile, "--cache-dir", w.cache)
}

// registryFlags reach the test's registry, with the official names mirrored there.
func (w *world) registryFlags() []string {
	return []string{
		"--insecure-registry", w.reg.Host,
		"--mirror", "docker.wso2.com=" + w.prefix,
		"--mirror", "registry.wso2.com=" + w.prefix,
	}
}

// pushIS58 pushes a stand-in WSO2 IS 5.8.0 alpine base under its official name and
// returns its digest.
func (w *world) pushIS58(platforms ...v1.Platform) string {
	w.t.Helper()
	o := standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(1565855673150)}
	return w.pushBase(o, []string{"wso2is:5.8.0.1565855673150-alpine3.10", "wso2is:5.8.0-alpine3.10"}, platforms...)
}

func (w *world) pushBase(o standin.Options, refs []string, platforms ...v1.Platform) string {
	w.t.Helper()
	ctx := context.Background()
	var digest string
	for _, ref := range refs {
		var err error
		if len(platforms) > 1 {
			idx, ierr := standin.Index(o, platforms...)
			if ierr != nil {
				w.t.Fatal(ierr)
			}
			digest, err = standin.PushIndex(ctx, w.prefix+"/"+ref, idx, true)
		} else {
			p := v1.Platform{OS: "linux", Architecture: "amd64"}
			if len(platforms) == 1 {
				p = platforms[0]
			}
			img, ierr := standin.Image(o, p)
			if ierr != nil {
				w.t.Fatal(ierr)
			}
			digest, err = standin.Push(ctx, w.prefix+"/"+ref, img, true)
		}
		if err != nil {
			w.t.Fatal(err)
		}
	}
	return digest
}

// file writes a file under the profile's folder and returns its contents' sha256.
func (w *world) file(rel, content string, mode os.FileMode) string {
	w.t.Helper()
	p := filepath.Join(w.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		w.t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// profile writes a profile file and returns its path.
func (w *world) profile(name, yaml string) string {
	w.t.Helper()
	w.file(name, yaml, 0o644)
	return filepath.Join(w.dir, name)
}

// vendor is a download site over TLS on loopback, with real OpenPGP keys: good (pinned),
// other (not in the keyring), unpinned (in the keyring, not pinned), expired, revoked.
type vendor struct {
	srv      *httptest.Server
	caFile   string
	files    sync.Map // path → []byte
	hits     sync.Map // path → *int
	keys     map[string]*openpgp.Entity
	keyring  string
	goodFPR  string
	pinned   []string
	requests func() int
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{keys: map[string]*openpgp.Entity{
		"good":     testpgp.NewKey(t, "good"),
		"other":    testpgp.NewKey(t, "other"),
		"unpinned": testpgp.NewKey(t, "unpinned"),
		"expired":  testpgp.NewKey(t, "expired", testpgp.Expired()),
		"revoked":  testpgp.NewKey(t, "revoked", testpgp.Revoked()),
	}}
	var mu sync.Mutex
	count := 0
	v.requests = func() int { mu.Lock(); defer mu.Unlock(); return count }
	v.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		b, ok := v.files.Load(r.URL.Path)
		if !ok {
			http.NotFound(rw, r)
			return
		}
		_, _ = rw.Write(b.([]byte))
	}))
	v.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	v.srv.StartTLS()
	t.Cleanup(v.srv.Close)
	dir := t.TempDir()
	v.caFile = filepath.Join(dir, "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: v.srv.Certificate().Raw})
	if err := os.WriteFile(v.caFile, ca, 0o644); err != nil {
		t.Fatal(err)
	}
	// The keyring holds every key but "other"; only good, expired and revoked are pinned.
	v.keyring = filepath.Join(dir, "vendor.asc")
	ring := testpgp.ArmoredPublic(t, v.keys["good"], v.keys["unpinned"], v.keys["expired"], v.keys["revoked"])
	if err := os.WriteFile(v.keyring, ring, 0o644); err != nil {
		t.Fatal(err)
	}
	v.goodFPR = testpgp.Fingerprint(v.keys["good"])
	v.pinned = []string{v.goodFPR, testpgp.Fingerprint(v.keys["expired"]), testpgp.Fingerprint(v.keys["revoked"])}
	return v
}

// serve publishes content at path, signed by key (when key is not ""), and returns the
// URL and the content's sha256.
func (v *vendor) serve(t *testing.T, path string, content []byte, key string) (url, sum string) {
	v.files.Store(path, content)
	if key != "" {
		v.files.Store(path+".asc", testpgp.Sign(t, v.keys[key], content, true))
	}
	s := sha256.Sum256(content)
	return v.srv.URL + path, hex.EncodeToString(s[:])
}

// gpgYAML is the profile's gpg block for this vendor.
func (v *vendor) gpgYAML() string {
	return fmt.Sprintf("gpg:\n  keyring: %s\n  fingerprints: [%s]\n", v.keyring, strings.Join(v.pinned, ", "))
}

// result of one run of the CLI, in process.
type result struct {
	stdout, stderr string
	code           int
	err            error
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(&errb, "wso2img:", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: exitCode(err), err: err}
}
