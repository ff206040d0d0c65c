package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/registry"
)

// faulty is an in-process registry behind a fault-injecting proxy.
func faulty(t *testing.T, stall time.Duration) (*netfault.Proxy, registry.Options) {
	t.Helper()
	srv := httptest.NewServer(ggcr.New(ggcr.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	p, err := netfault.StartProxy(context.Background(), strings.TrimPrefix(srv.URL, "http://"), netfault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, registry.Options{Insecure: []string{p.Host()}, StallTimeout: stall}
}

var manifestPut = regexp.MustCompile(`^/v2/.+/manifests/`)

// TestRegistryWritesRetry: transient failures of wso2img's own registry writes are
// retried a bounded number of times; permanent ones fail at once with the registry's
// answer; a stalled registry ends the request.
func TestRegistryWritesRetry(t *testing.T) {
	img, _ := random.Image(256, 1)
	for _, c := range []struct {
		name   string
		rule   netfault.Rule
		ok     bool
		tries  int // manifest PUTs the proxy saw
		within time.Duration
		minDur time.Duration
		errHas string
	}{
		{name: "503 twice", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Times: 2, Action: netfault.Respond(503)}, ok: true, tries: 3},
		{name: "500 always", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Action: netfault.Respond(500)}, tries: 4, errHas: "500"},
		{name: "429 with Retry-After", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Times: 1, Action: netfault.Respond(429).WithHeader("Retry-After", "2")}, ok: true, tries: 2, minDur: 2 * time.Second},
		{name: "reset", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Times: 2, Action: netfault.Reset(netfault.AfterBody)}, ok: true, tries: 3},
		{name: "401", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Action: netfault.Respond(401)}, tries: 1, errHas: "401"},
		{name: "403", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Action: netfault.Respond(403)}, tries: 1, errHas: "DENIED"},
		{name: "stall", rule: netfault.Rule{Method: "PUT", Path: manifestPut, Action: netfault.Stall(0)}, tries: 4, within: 20 * time.Second, errHas: "stalled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stall := time.Duration(0) // the default: a loaded machine is slow, not stalled
			if c.name == "stall" {
				stall = time.Second
			}
			p, o := faulty(t, stall)
			if _, err := p.Add(c.rule); err != nil {
				t.Fatal(err)
			}
			ref, _ := o.ParseReference(p.Host() + "/r/x:1")
			start := time.Now()
			err := remote.Write(ref, img, o.Remote(context.Background())...)
			took := time.Since(start)
			if c.ok != (err == nil) || (c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas))) {
				t.Fatalf("error %v", err)
			}
			if n := p.Count("PUT", manifestPut); n != c.tries {
				t.Errorf("%d manifest PUTs, want %d", n, c.tries)
			}
			if c.within > 0 && took > c.within {
				t.Errorf("took %s, want under %s", took, c.within)
			}
			if took < c.minDur {
				t.Errorf("took %s: Retry-After was not waited for", took)
			}
			if c.ok {
				if d, err := o.Digest(context.Background(), ref); err != nil || d == "" {
					t.Errorf("the write did not land: %q, %v", d, err)
				}
			}
		})
	}
}

// TestListTagsBounds: a registry whose tag pages loop, or are enormous, fails the
// listing with a reason instead of keeping wso2img busy.
func TestListTagsBounds(t *testing.T) {
	var srvURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(200)
		case strings.HasPrefix(r.URL.Path, "/v2/loop/"):
			// Page 2 links back to page 1.
			next := "/v2/loop/tags/list?last=b"
			if r.URL.Query().Get("last") == "b" {
				next = "/v2/loop/tags/list?last=a"
			}
			w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, srvURL, next))
			fmt.Fprint(w, `{"name":"loop","tags":["a","b"]}`)
		case strings.HasPrefix(r.URL.Path, "/v2/huge/"):
			fmt.Fprint(w, `{"name":"huge","tags":["`)
			chunk := strings.Repeat("x", 1<<20)
			for i := 0; i < 20; i++ {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			fmt.Fprint(w, `"]}`)
		case strings.HasPrefix(r.URL.Path, "/v2/paged/"):
			if r.URL.Query().Get("last") == "" {
				w.Header().Set("Link", `</v2/paged/tags/list?last=b>; rel="next"`)
				fmt.Fprint(w, `{"name":"paged","tags":["a","b"]}`)
				return
			}
			fmt.Fprint(w, `{"name":"paged","tags":["c"]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	srvURL = srv.URL
	host := strings.TrimPrefix(srv.URL, "http://")
	o := registry.Options{Insecure: []string{host}}
	ctx := context.Background()
	list := func(repo string) ([]string, error) {
		r, _ := o.NewRepository(host + "/" + repo)
		return o.ListTags(ctx, r)
	}
	if got, err := list("paged"); err != nil || strings.Join(got, ",") != "a,b,c" {
		t.Errorf("paged: %v, %v", got, err)
	}
	if _, err := list("loop"); err == nil || !strings.Contains(err.Error(), "pagination loop") {
		t.Errorf("loop: %v", err)
	}
	if _, err := list("huge"); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("huge: %v", err)
	}
	if got, err := list("missing"); err != nil || got != nil {
		t.Errorf("missing: %v, %v", got, err)
	}
}

// TestStallErrorIsATimeout: a stall reads as a timeout to callers that check.
func TestStallErrorIsATimeout(t *testing.T) {
	var ne interface{ Timeout() bool }
	err := error(&registry.StallError{Doing: "receiving", After: time.Second})
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Error("StallError is not a timeout")
	}
}
