package netfault_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/wso2img/wso2img/internal/netfault"
)

var (
	reManifest = regexp.MustCompile(`^/v2/.+/manifests/[^/]+$`)
	reUploads  = regexp.MustCompile(`^/v2/.+/blobs/uploads/`)
	reBlob     = regexp.MustCompile(`^/v2/.+/blobs/sha256:[0-9a-f]{64}$`)
)

// backend is go-containerregistry's in-memory registry behind httptest, made to answer
// with absolute Location URLs naming its own host, as the distribution registry does,
// so that a proxy that failed to rewrite them would lose the client to the backend. It
// counts the requests it serves.
type backend struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   map[string]int // by method
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{n: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.n[r.Method]++
		b.mu.Unlock()
		reg.ServeHTTP(absoluteLocation{ResponseWriter: w, base: "http://" + r.Host}, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) host() string { return b.srv.Listener.Addr().String() }

func (b *backend) count(method string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[method]
}

type absoluteLocation struct {
	http.ResponseWriter
	base string
}

func (a absoluteLocation) WriteHeader(code int) {
	if loc := a.Header().Get("Location"); strings.HasPrefix(loc, "/") {
		a.Header().Set("Location", a.base+loc)
	}
	a.ResponseWriter.WriteHeader(code)
}

func startProxy(t *testing.T, backend string, opts netfault.Options) *netfault.Proxy {
	t.Helper()
	p, err := netfault.StartProxy(t.Context(), backend, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the proxy: %v", err)
		}
	})
	return p
}

func addRule(t *testing.T, p *netfault.Proxy, r netfault.Rule) string {
	t.Helper()
	name, err := p.Add(r)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// noRetry makes go-containerregistry report the first failure instead of retrying it.
func noRetry(ctx context.Context, p *netfault.Proxy) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(p.Transport()),
		remote.WithRetryStatusCodes(),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

func randomImage(t *testing.T, size int64, layers int) v1.Image {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func ref(t *testing.T, host, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestPassThrough pushes and pulls through the proxy: the blob upload goes POST, PATCH,
// PUT (as BuildKit's pusher and go-containerregistry both do) and every request, the
// ones sent to the rewritten upload URLs included, reaches the backend through the proxy.
func TestPassThrough(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	img := randomImage(t, 64<<10, 2)

	if err := remote.Write(ref(t, p.Host(), "acme/wso2is:5.8.0"), img, noRetry(ctx, p)...); err != nil {
		t.Fatalf("pushing through the proxy: %v", err)
	}
	got, err := remote.Image(ref(t, p.Host(), "acme/wso2is:5.8.0"), noRetry(ctx, p)...)
	if err != nil {
		t.Fatalf("pulling through the proxy: %v", err)
	}
	if g, w := digest(t, got), digest(t, img); g != w {
		t.Errorf("pulled digest %s, pushed %s", g, w)
	}
	// Read the layers too, so that blob GETs go through the proxy.
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading a layer through the proxy: %v", err)
		}
		rc.Close()
	}
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}

	reqs := p.Requests()
	var patches, puts, gets int
	for _, e := range reqs {
		if !e.Done || e.Rule != "" || e.Action != "pass" {
			t.Errorf("entry %+v: want done, no rule, action pass", e)
		}
		if e.Status != e.BackendStatus {
			t.Errorf("%s %s: client got %d, backend said %d", e.Method, e.Path, e.Status, e.BackendStatus)
		}
		if e.Location != "" && !strings.HasPrefix(e.Location, p.URL()+"/v2/") {
			t.Errorf("%s %s: Location %q does not name the proxy %s", e.Method, e.Path, e.Location, p.URL())
		}
		switch {
		case e.Method == http.MethodPatch && reUploads.MatchString(e.Path):
			patches++
			if e.BytesIn == 0 {
				t.Errorf("PATCH %s: BytesIn 0, want the layer's bytes", e.Path)
			}
		case e.Method == http.MethodPut && reUploads.MatchString(e.Path):
			puts++
		case e.Method == http.MethodGet && reBlob.MatchString(e.Path):
			gets++
		}
	}
	// 2 layers and the config blob are uploaded, 2 layers read back.
	if patches != 3 || puts != 3 || gets < 2 {
		t.Errorf("proxy saw %d upload PATCHes, %d upload PUTs, %d blob GETs; want 3, 3, ≥2\n%v", patches, puts, gets, reqs)
	}
	// Had the Location not been rewritten, the PATCHes and PUTs would have gone to the
	// backend directly, and it would count more requests than the proxy.
	for _, m := range []string{http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodGet, http.MethodHead} {
		if g, w := p.Count(m, nil), be.count(m); g != w {
			t.Errorf("%s: proxy logged %d, backend served %d", m, g, w)
		}
	}
	if p.Count("", nil) != len(reqs) || p.Count("put", reManifest) != 1 {
		t.Errorf("Count: all %d (want %d), manifest PUTs %d (want 1)", p.Count("", nil), len(reqs), p.Count("put", reManifest))
	}
	st := p.Stats()
	if st.Up < 2*64<<10 || st.Down < 2*64<<10 || st.Conns == 0 {
		t.Errorf("stats %+v: want ≥ %d bytes each way (2 layers), some connections", st, 2*64<<10)
	}
}

// TestRespond checks injected answers: the status and body a client sees, that the
// rule fires the first Times matching requests only, and that the backend never saw
// the requests a rule answered.
func TestRespond(t *testing.T) {
	for _, tc := range []struct {
		status   int
		header   [2]string
		path     string
		wantCode string
	}{
		{503, [2]string{}, "/v2/acme/app/manifests/latest", "UNAVAILABLE"},
		{500, [2]string{}, "/v2/acme/app/manifests/latest", "UNKNOWN"},
		{429, [2]string{"Retry-After", "7"}, "/v2/acme/app/manifests/latest", "TOOMANYREQUESTS"},
		{401, [2]string{"WWW-Authenticate", `Basic realm="netfault"`}, "/v2/acme/app/manifests/latest", "UNAUTHORIZED"},
		{403, [2]string{}, "/v2/acme/app/blobs/uploads/", "DENIED"},
		{404, [2]string{}, "/v2/acme/app/manifests/latest", "MANIFEST_UNKNOWN"},
		{404, [2]string{}, "/v2/acme/app/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", "BLOB_UNKNOWN"},
	} {
		t.Run(fmt.Sprintf("%d%s", tc.status, strings.ReplaceAll(tc.path, "/", "_")), func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			be := newBackend(t)
			p := startProxy(t, be.host(), netfault.Options{})
			act := netfault.Respond(tc.status)
			if tc.header[0] != "" {
				act = act.WithHeader(tc.header[0], tc.header[1])
			}
			rule := addRule(t, p, netfault.Rule{Method: "GET", Path: regexp.MustCompile("^" + regexp.QuoteMeta(tc.path) + "$"), Times: 2, Action: act})

			client := &http.Client{Transport: p.Transport()}
			for i := 1; i <= 3; i++ {
				resp, body := get(ctx, t, client, p.URL()+tc.path)
				if i <= 2 {
					if resp.StatusCode != tc.status {
						t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
					}
					var doc struct {
						Errors []struct{ Code, Message string }
					}
					if err := json.Unmarshal(body, &doc); err != nil || len(doc.Errors) != 1 || doc.Errors[0].Code != tc.wantCode {
						t.Errorf("request %d: body %s (%v), want one error with code %s", i, body, err, tc.wantCode)
					}
					if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
						t.Errorf("request %d: %s %q, want %q", i, tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
					}
					continue
				}
				// The third passes: the empty backend answers 404 itself, or 202 to POST.
				if resp.StatusCode == tc.status && tc.status != 404 {
					t.Errorf("request 3: status %d; the rule should have stopped firing", resp.StatusCode)
				}
			}
			if n := p.Fired(rule); n != 2 {
				t.Errorf("Fired(%s) = %d, want 2", rule, n)
			}
			if n := be.count("GET"); n != 1 {
				t.Errorf("backend served %d GETs, want 1 (the two answered by the rule never reach it)", n)
			}
			if err := p.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			reqs := p.Requests()
			if len(reqs) != 3 || reqs[0].Rule != rule || reqs[0].Status != tc.status || reqs[0].BackendStatus != 0 || reqs[2].Rule != "" || reqs[2].BackendStatus == 0 {
				t.Errorf("log %+v: want 2 answered by %s with %d, then 1 passed", reqs, rule, tc.status)
			}
		})
	}
}

func get(ctx context.Context, t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, body
}

// TestRespondFailsPush: a client without retries sees the injected 503 as the
// registry's error, the backend has no manifest, and a second push (the rule spent)
// succeeds with the same digest.
func TestRespondFailsPush(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	rule := addRule(t, p, netfault.Rule{Name: "manifest-503", Method: "PUT", Path: reManifest, Times: 1, Action: netfault.Respond(503)})
	img := randomImage(t, 1024, 1)
	dst := ref(t, p.Host(), "acme/app:1")

	err := remote.Write(dst, img, noRetry(ctx, p)...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != 503 || len(terr.Errors) != 1 || terr.Errors[0].Code != transport.UnavailableErrorCode {
		t.Fatalf("push: %v; want a transport.Error with status 503 and code UNAVAILABLE", err)
	}
	if _, err := remote.Head(ref(t, be.host(), "acme/app:1"), remote.WithContext(ctx)); err == nil {
		t.Fatal("the backend has the manifest that the proxy refused")
	}
	if err := remote.Write(dst, img, noRetry(ctx, p)...); err != nil {
		t.Fatalf("second push: %v", err)
	}
	d, err := remote.Head(ref(t, be.host(), "acme/app:1"), remote.WithContext(ctx))
	if err != nil || d.Digest != digest(t, img) {
		t.Fatalf("backend has %v (%v), want %s", d, err, digest(t, img))
	}
	if p.Fired(rule) != 1 || p.Count("PUT", reManifest) != 2 {
		t.Errorf("Fired = %d (want 1), manifest PUTs = %d (want 2)", p.Fired(rule), p.Count("PUT", reManifest))
	}
}

// TestRetryAfterWithRetries: go-containerregistry's default retries get past a 429 that
// fires twice; the proxy logs the three attempts.
func TestRetryAfterWithRetries(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	rule := addRule(t, p, netfault.Rule{Method: "PUT", Path: reManifest, Times: 2, Action: netfault.Respond(429).WithHeader("Retry-After", "1")})
	img := randomImage(t, 1024, 1)
	err := remote.Write(ref(t, p.Host(), "acme/app:1"), img, remote.WithContext(ctx), remote.WithTransport(p.Transport()),
		remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}))
	if err != nil {
		t.Fatalf("push with retries: %v", err)
	}
	if p.Fired(rule) != 2 || p.Count("PUT", reManifest) != 3 {
		t.Errorf("Fired = %d (want 2), manifest PUTs = %d (want 3)", p.Fired(rule), p.Count("PUT", reManifest))
	}
}

// TestReset: a reset before the body and after it fails the push with ECONNRESET and
// leaves the backend without the blob; a reset after the backend answered leaves the
// manifest in the backend while the client saw the connection reset: half done.
func TestReset(t *testing.T) {
	for _, tc := range []struct {
		phase           netfault.Phase
		method          string
		path            *regexp.Regexp
		backendHasImage bool
	}{
		// POST starts an upload and has no body: the client waits for the answer and
		// reads the reset. (A reset while a client still streams a body may surface
		// as the write failing instead, whichever its transport notices first.)
		{netfault.BeforeBody, "POST", reUploads, false},
		{netfault.AfterBody, "PATCH", reUploads, false},
		{netfault.AfterBackend, "PUT", reManifest, true},
	} {
		t.Run(tc.phase.String(), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			be := newBackend(t)
			p := startProxy(t, be.host(), netfault.Options{})
			rule := addRule(t, p, netfault.Rule{Method: tc.method, Path: tc.path, Times: 1, Action: netfault.Reset(tc.phase)})
			img := randomImage(t, 4096, 1)

			err := remote.Write(ref(t, p.Host(), "acme/app:1"), img, append(noRetry(ctx, p), remote.WithJobs(1))...)
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("push: %v; want connection reset (ECONNRESET)", err)
			}
			_, herr := remote.Head(ref(t, be.host(), "acme/app:1"), remote.WithContext(ctx))
			if has := herr == nil; has != tc.backendHasImage {
				t.Errorf("backend has the manifest: %v (%v), want %v", has, herr, tc.backendHasImage)
			}
			if err := p.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			var fired []netfault.Entry
			for _, e := range p.Requests() {
				if e.Rule == rule {
					fired = append(fired, e)
				}
			}
			if len(fired) != 1 || fired[0].Status != 0 || fired[0].Action != "reset "+tc.phase.String() {
				t.Fatalf("entries of %s: %+v; want one, status 0, action reset %s", rule, fired, tc.phase)
			}
			e := fired[0]
			switch tc.phase {
			case netfault.BeforeBody:
				if e.BytesIn != 0 || e.BackendStatus != 0 {
					t.Errorf("BytesIn %d, BackendStatus %d; want 0, 0 (reset before the body)", e.BytesIn, e.BackendStatus)
				}
			case netfault.AfterBody:
				if e.BytesIn == 0 || e.BackendStatus != 0 {
					t.Errorf("BytesIn %d, BackendStatus %d; want the body read, backend not asked", e.BytesIn, e.BackendStatus)
				}
			case netfault.AfterBackend:
				if e.BackendStatus != http.StatusCreated {
					t.Errorf("BackendStatus %d, want 201", e.BackendStatus)
				}
			}
		})
	}
}

// TestStall: a client with a 1 s timeout gives up on a stalled request after about 1 s;
// a stall with a duration ends in EOF; Close ends a stall that has no end.
func TestStall(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	rule := addRule(t, p, netfault.Rule{Method: "GET", Path: regexp.MustCompile(`^/v2/stall/forever/`), Action: netfault.Stall(0)})
	addRule(t, p, netfault.Rule{Method: "GET", Path: regexp.MustCompile(`^/v2/stall/short/`), Action: netfault.Stall(200 * time.Millisecond)})

	client := &http.Client{Transport: p.Transport(), Timeout: time.Second}
	start := time.Now()
	_, err := client.Get(p.URL() + "/v2/stall/forever/manifests/latest")
	took := time.Since(start)
	var nerr net.Error
	if !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Errorf("stalled GET: %v; want a client timeout", err)
	}
	// Loose upper bound: the machine may be busy, but a stall must not outlive the client.
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("stalled GET gave up after %s, want about 1 s", took)
	}
	if err := p.WaitIdle(testCtx(t, 3*time.Second)); err != nil {
		t.Fatalf("the proxy still handles the request its client gave up on: %v", err)
	}
	if p.Fired(rule) != 1 {
		t.Errorf("Fired(%s) = %d, want 1", rule, p.Fired(rule))
	}

	start = time.Now()
	_, err = client.Get(p.URL() + "/v2/stall/short/manifests/latest")
	took = time.Since(start)
	if !errors.Is(err, io.EOF) {
		t.Errorf("GET stalled for 200 ms: %v; want EOF", err)
	}
	if took < 200*time.Millisecond || took > 900*time.Millisecond {
		t.Errorf("GET stalled for 200 ms ended after %s", took)
	}

	// Close must end a stall whose client waits for ever.
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/v2/stall/forever/manifests/x", nil)
		resp, err := (&http.Client{Transport: p.Transport()}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, func() bool { return p.Fired(rule) == 2 })
	start = time.Now()
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-errc; err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("client of a stall: %v after %s; want an error soon after Close", err, time.Since(start))
	}
}

// TestStallBody: the client gets the backend's headers and the first N body bytes, then
// nothing: a timeout, or an unexpected EOF when the stall has a duration.
func TestStallBody(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	img := randomImage(t, 256<<10, 1)
	if err := remote.Write(ref(t, p.Host(), "acme/app:1"), img, noRetry(ctx, p)...); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	size, _ := layers[0].Size()
	blobURL := p.URL() + "/v2/acme/app/blobs/" + ld.String()

	for _, tc := range []struct {
		stall   time.Duration
		timeout time.Duration
		wantErr func(error) bool
	}{
		{0, time.Second, func(err error) bool { var n net.Error; return errors.As(err, &n) && n.Timeout() }},
		{100 * time.Millisecond, 5 * time.Second, func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
	} {
		t.Run(fmt.Sprint(tc.stall), func(t *testing.T) {
			rule := addRule(t, p, netfault.Rule{Method: "GET", Path: reBlob, Times: 1, Action: netfault.StallBody(10000, tc.stall)})
			defer p.Remove(rule)
			client := &http.Client{Transport: p.Transport(), Timeout: tc.timeout}
			start := time.Now()
			resp, err := client.Get(blobURL)
			if err != nil {
				t.Fatalf("GET %s: %v; want the headers", blobURL, err)
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 || resp.ContentLength != size || n != 10000 || !tc.wantErr(err) {
				t.Errorf("status %d, length %d, read %d bytes, then %v; want 200, %d, 10000, then the stall's error", resp.StatusCode, resp.ContentLength, n, err, size)
			}
			if took := time.Since(start); took > tc.timeout+2*time.Second {
				t.Errorf("took %s", took)
			}
			if err := p.WaitIdle(testCtx(t, 3*time.Second)); err != nil {
				t.Fatal(err)
			}
			last := p.Requests()[len(p.Requests())-1]
			if last.Rule != rule || last.Status != 200 || last.BytesOut != 10000 {
				t.Errorf("entry %+v: want rule %s, status 200, 10000 bytes out", last, rule)
			}
		})
	}
}

// TestDelay: a delayed request succeeds no sooner than the delay.
func TestDelay(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	addRule(t, p, netfault.Rule{Path: regexp.MustCompile(`^/v2/$`), Action: netfault.Delay(300 * time.Millisecond)})
	start := time.Now()
	resp, _ := get(ctx, t, &http.Client{Transport: p.Transport()}, p.URL()+"/v2/")
	if took := time.Since(start); resp.StatusCode != 200 || took < 300*time.Millisecond {
		t.Errorf("status %d after %s; want 200 after at least 300 ms", resp.StatusCode, took)
	}
}

// TestRules: Skip, Times, predicates, order, Remove, Clear, and the errors of Add.
func TestRules(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	client := &http.Client{Transport: p.Transport()}
	status := func(path string) int {
		resp, _ := get(ctx, t, client, p.URL()+path)
		return resp.StatusCode
	}
	// The third GET of /v2/ fails; requests carrying ?fail answer 500 every time (a
	// predicate); an earlier, spent rule lets later ones fire.
	third := addRule(t, p, netfault.Rule{Name: "third", Method: "get", Path: regexp.MustCompile(`^/v2/$`), Skip: 2, Times: 1, Action: netfault.Respond(503)})
	pred := addRule(t, p, netfault.Rule{When: func(r *http.Request) bool { return r.URL.Query().Has("fail") }, Action: netfault.Respond(500)})
	var got []int
	for _, path := range []string{"/v2/", "/v2/", "/v2/", "/v2/", "/v2/?fail", "/v2/?fail"} {
		got = append(got, status(path))
	}
	if want := []int{200, 200, 503, 200, 500, 500}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if p.Fired(third) != 1 || p.Fired(pred) != 2 || pred != "rule-2" {
		t.Errorf("Fired(third) = %d (want 1), Fired(%s) = %d (want 2; name want rule-2)", p.Fired(third), pred, p.Fired(pred))
	}
	if _, err := p.Add(netfault.Rule{Name: "third"}); err == nil || !strings.Contains(err.Error(), "third") {
		t.Errorf("adding a second rule named third: %v; want an error naming it", err)
	}
	for _, bad := range []netfault.Rule{
		{Action: netfault.Respond(0)},
		{Action: netfault.Stall(-time.Second)},
		{Action: netfault.Reset(netfault.Phase(9))},
		{Action: netfault.Delay(time.Second).WithHeader("Retry-After", "1")},
		{Times: -1},
	} {
		if _, err := p.Add(bad); err == nil {
			t.Errorf("Add(%+v) succeeded, want an error", bad)
		}
	}
	if !p.Remove(pred) || p.Remove(pred) {
		t.Error("Remove: want true, then false")
	}
	if s := status("/v2/?fail"); s != 200 {
		t.Errorf("after Remove: status %d, want 200", s)
	}
	addRule(t, p, netfault.Rule{Action: netfault.Respond(503)})
	if s := status("/v2/"); s != 503 {
		t.Errorf("with a catch-all rule: status %d, want 503", s)
	}
	p.Clear()
	if s := status("/v2/"); s != 200 {
		t.Errorf("after Clear: status %d, want 200", s)
	}
	p.ClearLog()
	if len(p.Requests()) != 0 || p.Fired(third) != 0 {
		t.Errorf("after ClearLog: %d entries, Fired(third) = %d", len(p.Requests()), p.Fired(third))
	}
}

// TestRulesConcurrent adds, fires and clears rules from many goroutines (run with -race).
func TestRulesConcurrent(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{})
	rule := addRule(t, p, netfault.Rule{Name: "ten", Path: regexp.MustCompile(`^/v2/$`), Times: 10, Action: netfault.Respond(503)})
	client := &http.Client{Transport: p.Transport()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	n503 := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/v2/", nil)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == 503 {
					n503++
				}
				mu.Unlock()
				_ = p.Requests()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			name, err := p.Add(netfault.Rule{Name: fmt.Sprint("x", i), Path: regexp.MustCompile(`^/never$`)})
			if err != nil {
				t.Error(err)
				return
			}
			p.Remove(name)
		}
	}()
	wg.Wait()
	if n503 != 10 || p.Fired(rule) != 10 || p.Count("GET", nil) != 40 {
		t.Errorf("503s %d, Fired %d, GETs logged %d; want 10, 10, 40", n503, p.Fired(rule), p.Count("GET", nil))
	}
}

// TestTLS: the proxy serves HTTPS with its own CA; a client that trusts the CA pushes
// through it, one that does not is refused.
func TestTLS(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{TLS: true})
	if !strings.HasPrefix(p.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL %s, want https://127.0.0.1:PORT", p.URL())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.CAPEM()) {
		t.Fatalf("CAPEM is not a PEM certificate: %q", p.CAPEM())
	}
	if _, err := http.Get(p.URL() + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET without the CA: %v; want a certificate error", err)
	}
	img := randomImage(t, 8<<10, 1)
	r, err := name.ParseReference(p.Host() + "/acme/app:1") // not Insecure: HTTPS first
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, noRetry(ctx, p)...); err != nil {
		t.Fatalf("pushing over TLS: %v", err)
	}
	d, err := remote.Head(ref(t, be.host(), "acme/app:1"), remote.WithContext(ctx))
	if err != nil || d.Digest != digest(t, img) {
		t.Fatalf("backend has %v (%v), want %s", d, err, digest(t, img))
	}
	for _, e := range p.Requests() {
		if e.Location != "" && !strings.HasPrefix(e.Location, "https://"+p.Host()+"/") {
			t.Errorf("%s %s: Location %q, want https://%s/…", e.Method, e.Path, e.Location, p.Host())
		}
	}
	if p.Count("PATCH", reUploads) != 2 {
		t.Errorf("PATCHes through the TLS proxy: %d, want 2", p.Count("PATCH", reUploads))
	}
	// A reset reaches a TLS client as a reset too.
	addRule(t, p, netfault.Rule{Path: regexp.MustCompile(`^/v2/$`), Action: netfault.Reset(netfault.BeforeBody)})
	tr := p.Transport()
	tr.DisableKeepAlives = true
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/v2/", nil)
	if _, err := (&http.Client{Transport: tr}).Do(req); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("GET over TLS with a reset rule: %v; want ECONNRESET", err)
	}
}

// TestBackendDown: a backend that does not answer gives the client a 502 with the
// reason, and the log says it.
func TestBackendDown(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	p := startProxy(t, dead, netfault.Options{})
	resp, body := get(ctx, t, &http.Client{Transport: p.Transport()}, p.URL()+"/v2/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), dead) {
		t.Errorf("status %d, body %s; want 502 naming %s", resp.StatusCode, body, dead)
	}
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if e := p.Requests()[0]; e.Status != 502 || !strings.Contains(e.Err, "connection refused") {
		t.Errorf("entry %+v: want status 502 and the dial error", e)
	}
}

func TestStartErrors(t *testing.T) {
	for _, backend := range []string{"", "ftp://127.0.0.1:1", "http://127.0.0.1:1/v2", "http://"} {
		if p, err := netfault.StartProxy(t.Context(), backend, netfault.Options{}); err == nil {
			p.Close()
			t.Errorf("StartProxy(%q) succeeded", backend)
		}
	}
	if _, err := netfault.StartProxy(t.Context(), "127.0.0.1:1", netfault.Options{Shape: netfault.Shape{Up: -1}}); err == nil {
		t.Error("StartProxy with a negative bandwidth succeeded")
	}
}

// TestLogWriter: with Options.Log, one line a request names the rule and the status.
func TestLogWriter(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	be := newBackend(t)
	var buf syncBuffer
	p := startProxy(t, be.host(), netfault.Options{Log: &buf})
	addRule(t, p, netfault.Rule{Name: "boom", Action: netfault.Respond(503)})
	get(ctx, t, &http.Client{Transport: p.Transport()}, p.URL()+"/v2/")
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); !strings.Contains(s, "GET /v2/ -> rule boom: respond 503, status 503") {
		t.Errorf("log %q: want a line for GET /v2/ naming rule boom and status 503", s)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
