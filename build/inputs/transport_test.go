package inputs_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/testpgp"
)

// silentTLS starts an https test server whose failed handshakes are not logged.
func silentTLS(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// caBundle writes the certificates of several test servers as one PEM bundle.
func caBundle(t *testing.T, srvs ...*httptest.Server) string {
	t.Helper()
	var all []byte
	for _, s := range srvs {
		b, err := os.ReadFile(writeCA(t, s))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	p := filepath.Join(t.TempDir(), "bundle.pem")
	if err := os.WriteFile(p, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// within runs fetch and fails the test unless it returns within d.
func within(t *testing.T, d time.Duration, fetch func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- fetch() }()
	select {
	case err := <-done:
		t.Logf("returned after %v", time.Since(start).Round(time.Millisecond))
		return err
	case <-time.After(d):
		t.Fatalf("the fetch did not end within %v", d)
		return nil
	}
}

// TestStall: a server that stops sending fails the download within the stall timeout,
// saying how far it got; before, a server that accepted and said nothing hung plan.
func TestStall(t *testing.T) {
	const stall = 300 * time.Millisecond
	// Accepts TCP and never answers: the TLS handshake never ends.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold); l.Close(); conns.Wait() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); <-hold; c.Close() }()
		}
	}()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	wait := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	srv := silentTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/no-headers":
			wait(r)
		case "/mid-body":
			w.Header().Set("Content-Length", "2000000")
			w.Write(make([]byte, 1500))
			w.(http.Flusher).Flush()
			wait(r)
		case "/signature.asc":
			w.Write([]byte("-----BEGIN PGP SIGNATURE-----\n"))
			w.(http.Flusher).Flush()
			wait(r)
		}
	}))
	for _, tc := range []struct {
		name, url, contains string
	}{
		{"accepts and says nothing", "https://" + l.Addr().String() + "/x.jar", "stalled before the response: no data for 300ms"},
		{"no headers", srv.URL + "/no-headers", "stalled before the response: no data for 300ms"},
		{"mid-body", srv.URL + "/mid-body", "stalled after 1.5 kB of 2.0 MB: no data for 300ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: writeCA(t, srv), StallTimeout: stall})
			err := within(t, 10*time.Second, func() error {
				_, err := fetch(t, f, inputs.Spec{Profile: "p", Field: "inputs[0]", URL: tc.url, SHA256: sha256hex(jar)})
				return err
			})
			wantContains(t, err, `profile "p", inputs[0] (`+tc.url+")", tc.contains)
			var ve *inputs.VerifyError
			if errors.As(err, &ve) {
				t.Errorf("a stall is a VerifyError (%v); want a plain error, a rerun may pass", err)
			}
			if b := blobs(t, cache); len(b) != 0 {
				t.Errorf("the cache holds %q after a stalled download", b)
			}
		})
	}
	t.Run("signature", func(t *testing.T) {
		mux := http.NewServeMux()
		signed := silentTLS(t, mux)
		mux.HandleFunc("/app.jar", func(w http.ResponseWriter, r *http.Request) { w.Write(jar) })
		f := newFetcher(t, inputs.Options{CAFile: caBundle(t, srv, signed), StallTimeout: stall})
		k := mustKey(t)
		key := loadKeyring(t, k.armored, k.fpr)
		err := within(t, 10*time.Second, func() error {
			_, err := fetch(t, f, inputs.Spec{Profile: "p", Field: "inputs[0]", URL: signed.URL + "/app.jar", SHA256: sha256hex(jar),
				Signature: srv.URL + "/signature.asc", Keyring: key})
			return err
		})
		wantContains(t, err, "inputs[0].signature", "stalled after 30 B: no data for 300ms")
	})
}

// testKey is an OpenPGP key of the test, pinned.
type testKey struct {
	e       *openpgp.Entity
	armored []byte
	fpr     string
}

func mustKey(t *testing.T) *testKey {
	e := testpgp.NewKey(t, "vendor")
	return &testKey{e: e, armored: testpgp.ArmoredPublic(t, e), fpr: testpgp.Fingerprint(e)}
}

func (k *testKey) sign(t *testing.T, data []byte) []byte { return testpgp.Sign(t, k.e, data, true) }

// rawServer answers every request with resp, written as it is (status line, headers
// and body), then closes the connection: what a broken server or proxy may send.
func rawServer(t *testing.T, resp string) *httptest.Server {
	t.Helper()
	return silentTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		buf.WriteString(resp)
		buf.Flush()
	}))
}

func TestContentLengthAndSize(t *testing.T) {
	long := bytes.Repeat([]byte("0123456789"), 3)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	mux := http.NewServeMux()
	mux.HandleFunc("/declared-big.zip", func(w http.ResponseWriter, r *http.Request) {
		// Declares 10 MB and sends nothing: only a check of the declaration ends this fast.
		w.Header().Set("Content-Length", "10000000")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/chunked-big.zip", func(w http.ResponseWriter, r *http.Request) {
		for range 20 {
			w.Write(make([]byte, 100_000))
			w.(http.Flusher).Flush()
		}
	})
	sized := silentTLS(t, mux)
	for _, tc := range []struct {
		name    string
		srv     *httptest.Server
		path    string
		sum     string
		maxSize int64 // Spec.MaxSize; Options.MaxSize is 1 MB
		what    string
		has     string
	}{
		{"shorter than declared", rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"), "/x.jar", sha256hex(long), 0, "",
			"the connection closed after 10 B of the 100 B its Content-Length declares"},
		// Go's client stops at Content-Length, so what follows is never read: the
		// checksum, taken over the declared bytes only, fails.
		{"longer than declared", rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"+string(long)), "/x.jar", sha256hex(long), 0, "sha256",
			"found " + sha256hex(long[:10])},
		{"declared length over the cap", sized, "/declared-big.zip", sha256hex(long), 0, "size",
			"expected at most 1.0 MB (maxSize), found a Content-Length of 10.0 MB"},
		{"declared length over the input's own cap", sized, "/declared-big.zip", sha256hex(long), 5000, "size",
			"expected at most 5.0 kB (maxSize), found a Content-Length of 10.0 MB"},
		{"undeclared length over the cap", sized, "/chunked-big.zip", sha256hex(long), 0, "size",
			"expected at most 1.0 MB (maxSize), found more than 1.0 MB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := t.TempDir()
			f := newFetcher(t, inputs.Options{CacheDir: cache, CAFile: writeCA(t, tc.srv), MaxSize: 1_000_000, StallTimeout: 5 * time.Second})
			st := newStage(t, f)
			url := tc.srv.URL + tc.path
			err := within(t, 4*time.Second, func() error {
				_, err := st.Fetch(context.Background(), inputs.Spec{Profile: "p", Field: "inputs[1]", URL: url, SHA256: tc.sum, MaxSize: tc.maxSize})
				return err
			})
			if tc.what != "" {
				wantVerifyError(t, err, tc.what, tc.has, url)
			} else {
				wantContains(t, err, tc.has, url)
			}
			if b := blobs(t, cache); len(b) != 0 {
				t.Errorf("the cache holds %q after a failed download", b)
			}
			if left := stagedFiles(t, st); len(left) != 0 {
				t.Errorf("the stage holds %q after a failed download", left)
			}
		})
	}
	t.Run("local file over the cap", func(t *testing.T) {
		root := t.TempDir()
		p := filepath.Join(root, "big.bin")
		if err := os.WriteFile(p, make([]byte, 2000), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := fetch(t, newFetcher(t, inputs.Options{}), inputs.Spec{Profile: "p", Field: "inputs[0]", Path: p, Root: root, MaxSize: 1000})
		wantVerifyError(t, err, "size", "expected at most 1.0 kB (maxSize), found 2.0 kB")
	})
}

// stagedFiles lists the regular files of a stage (its lock aside).
func stagedFiles(t *testing.T, st *inputs.Stage) []string {
	t.Helper()
	var out []string
	filepath.Walk(st.Dir(), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Name() != ".lock" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// authServer serves jar to requests whose Authorization is want, and records every
// Authorization header it sees.
type authServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newAuthServer(t *testing.T, want string, routes func(mux *http.ServeMux)) *authServer {
	a := &authServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.seen = append(a.seen, r.URL.Path+" "+r.Header.Get("Authorization"))
		a.mu.Unlock()
		if want != "" && r.Header.Get("Authorization") != want {
			http.Error(w, "no: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
			return
		}
		w.Write(jar)
	})
	if routes != nil {
		routes(mux)
	}
	a.Server = silentTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := mux.Handler(r); pattern != "/" {
			a.mu.Lock()
			a.seen = append(a.seen, r.URL.Path+" "+r.Header.Get("Authorization"))
			a.mu.Unlock()
			h.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return a
}

func (a *authServer) headers() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func basic(userpass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userpass))
}

func TestCredentials(t *testing.T) {
	const token = "tok-3f9a-very-secret"
	t.Setenv("MAVEN_TOKEN", token)
	t.Setenv("NEXUS_AUTH", "deployer:pa55-secret")
	t.Setenv("NO_COLON", "just-a-token")

	other := newAuthServer(t, "", nil) // another host (another port): must never see credentials
	main := newAuthServer(t, "Bearer "+token, func(mux *http.ServeMux) {
		mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/app.jar", http.StatusFound)
		})
		mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/app.jar", http.StatusFound)
		})
	})
	basicSrv := newAuthServer(t, basic("deployer:pa55-secret"), nil)
	netrcSrv := newAuthServer(t, basic("ci:netrc-secret"), nil)
	netrc := filepath.Join(t.TempDir(), "netrc")
	host := strings.TrimPrefix(netrcSrv.URL, "https://")
	if err := os.WriteFile(netrc, []byte("# build machine\nmachine "+host+"\n  login ci\n  password netrc-secret\ndefault login anyone password everywhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := caBundle(t, other.Server, main.Server, basicSrv.Server, netrcSrv.Server)
	// A fetcher, and so a cache, per case: a cached copy would need no request.
	fetcher := func(t *testing.T) *inputs.Fetcher { return newFetcher(t, inputs.Options{CAFile: ca, Netrc: netrc}) }
	bearer := &inputs.Auth{Env: "MAVEN_TOKEN"}

	for _, tc := range []struct {
		name string
		srv  *authServer
		url  string
		auth *inputs.Auth
		ok   bool
		has  []string // in the error
	}{
		{"bearer", main, main.URL + "/app.jar", bearer, true, nil},
		{"basic", basicSrv, basicSrv.URL + "/app.jar", &inputs.Auth{Env: "NEXUS_AUTH", Basic: true}, true, nil},
		{"netrc by host", netrcSrv, netrcSrv.URL + "/app.jar", nil, true, nil},
		{"redirect on the same host keeps them", main, main.URL + "/here", bearer, true, nil},
		{"refused credentials", basicSrv, basicSrv.URL + "/app.jar", bearer, false, []string{"HTTP 401", "the credentials from $MAVEN_TOKEN were refused"}},
		{"none where they are wanted", main, main.URL + "/app.jar", nil, false, []string{"HTTP 401", "auth: {env: VARIABLE}"}},
		{"basic without a colon", basicSrv, basicSrv.URL + "/app.jar", &inputs.Auth{Env: "NO_COLON", Basic: true}, false, []string{"$NO_COLON must hold user:password"}},
		{"unset variable", main, main.URL + "/app.jar", &inputs.Auth{Env: "UNSET_VARIABLE_X"}, false, []string{"$UNSET_VARIABLE_X, which is not set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fetch(t, fetcher(t), inputs.Spec{Profile: "p", Field: "inputs[0]", URL: tc.url, SHA256: sha256hex(jar), Auth: tc.auth})
			if tc.ok {
				if err != nil {
					t.Fatalf("Fetch: %v (headers seen: %q)", err, tc.srv.headers())
				}
				return
			}
			wantContains(t, err, tc.has...)
			for _, secret := range []string{token, "pa55-secret", "netrc-secret", "just-a-token", base64.StdEncoding.EncodeToString([]byte("deployer:pa55-secret"))} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q holds a credential", err)
				}
			}
		})
	}

	t.Run("redirect to another host drops them", func(t *testing.T) {
		_, err := fetch(t, fetcher(t), inputs.Spec{Profile: "p", Field: "inputs[0]", URL: main.URL + "/away", SHA256: sha256hex(jar), Auth: bearer})
		if err != nil {
			t.Fatal(err)
		}
		seen := other.headers()
		if len(seen) == 0 {
			t.Fatal("the other host got no request: the redirect was not followed")
		}
		for _, h := range seen {
			if h != "/app.jar " {
				t.Errorf("the other host got %q: credentials crossed the redirect", h)
			}
		}
	})

	t.Run("signature on another host gets none", func(t *testing.T) {
		key := mustKey(t)
		kr := loadKeyring(t, key.armored, key.fpr)
		sig := newAuthServer(t, "", func(mux *http.ServeMux) {
			mux.HandleFunc("/app.jar.asc", func(w http.ResponseWriter, r *http.Request) { w.Write(key.sign(t, jar)) })
		})
		fs := newFetcher(t, inputs.Options{CAFile: caBundle(t, main.Server, sig.Server), Netrc: netrc})
		v, err := fetch(t, fs, inputs.Spec{Profile: "p", Field: "inputs[0]", URL: main.URL + "/app.jar", SHA256: sha256hex(jar), Auth: bearer,
			Signature: sig.URL + "/app.jar.asc", Keyring: kr})
		if err != nil {
			t.Fatal(err)
		}
		if v.Signer != key.fpr {
			t.Errorf("Signer = %s", v.Signer)
		}
		for _, h := range sig.headers() {
			if h != "/app.jar.asc " {
				t.Errorf("the signature's host got %q", h)
			}
		}
	})
}

func TestCredentialsInURLRefused(t *testing.T) {
	srv, accepted := plainListener(t)
	f := newFetcher(t, inputs.Options{})
	for _, tc := range []struct {
		name, url, sig, field, found string
	}{
		{"user info", "https://deployer:hunter2secret@" + srv + "/app.jar", "", "inputs[0]", "a user name or password before the host"},
		{"token", "https://" + srv + "/app.jar?token=hunter2secret", "", "inputs[0]", `the query parameter "token"`},
		{"presigned S3", "https://" + srv + "/app.jar?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=hunter2secret", "", "inputs[0]", `the query parameter "X-Amz-Credential"`},
		{"signature URL", "https://" + srv + "/app.jar", "https://" + srv + "/app.jar.asc?access_token=hunter2secret", "inputs[0].signature", `the query parameter "access_token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := inputs.Spec{Profile: "p", Field: "inputs[0]", URL: tc.url, SHA256: sha256hex(jar), Signature: tc.sig}
			if tc.sig != "" {
				s.Keyring = &inputs.Keyring{}
			}
			_, err := fetch(t, f, s)
			ve := wantVerifyError(t, err, "credentials in the URL", tc.found)
			if ve.Field != tc.field {
				t.Errorf("Field = %s, want %s", ve.Field, tc.field)
			}
			if strings.Contains(err.Error(), "hunter2secret") {
				t.Errorf("error %q repeats the secret", err)
			}
			if n := accepted.Load(); n != 0 {
				t.Errorf("%d connections made for a refused URL", n)
			}
		})
	}
}

func TestParseNetrc(t *testing.T) {
	got := inputs.ParseNetrc(`# a comment line
machine repo.acme.example login ci password "p@ss word"
machine nexus:8443
  login deployer
  password s3cret#not-a-comment
macdef init
  machine in.a.macro login x password y

default login anyone password everywhere
machine last login l password "q\"uoted"`)
	want := [][3]string{
		{"repo.acme.example", "ci", "p@ss word"},
		{"nexus:8443", "deployer", "s3cret#not-a-comment"},
		{"last", "l", `q"uoted`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParseNetrc = %q, want %q", got, want)
	}
}

func FuzzParseNetrc(f *testing.F) {
	f.Add("machine h login u password p\n")
	f.Add("default login a password b\nmacdef x\nmachine y\n\nmachine z password \"a\\\"b\"")
	f.Add("\"unterminated")
	f.Fuzz(func(t *testing.T, data string) {
		for _, e := range inputs.ParseNetrc(data) {
			if e[0] == "" && e[2] != "" && !strings.Contains(data, "machine") {
				t.Errorf("an entry %q without a machine token", e)
			}
		}
	})
}
