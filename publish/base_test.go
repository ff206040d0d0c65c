package publish_test

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/publish"
)

// newTarget starts a second in-process registry and returns its host.
func newTarget(t *testing.T) string {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestBaseCache: a base from another registry is copied into the target registry
// once, the build takes it from there, and a second profile on it copies nothing; a
// registry that refuses mounts is named, with what is pulled instead.
func TestBaseCache(t *testing.T) {
	e := newEnv(t)
	tg := newTarget(t)
	e.target = tg
	e.reg.Insecure = append(e.reg.Insecure, tg)
	b := &fakeBuilder{reg: e.reg}

	first, err := e.run(b, "", e.profile("one", 1565855673150, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	r := first[0]
	base := stage(r, "base")
	cache := tg + "/wso2img-bases/wso2is"
	if base.Status != publish.Done || r.BaseBytesCopied <= 0 || !strings.Contains(base.Detail, cache) {
		t.Errorf("first build: base stage %+v, copied %d", base, r.BaseBytesCopied)
	}
	if r.BaseBytesPulled != 0 {
		t.Errorf("first build pulled %d bytes of the base: it should mount them from the cache", r.BaseBytesPulled)
	}
	if e.digest(cache+"@"+r.Base.Digest) != r.Base.Digest || e.digest(cache+":5.8.0.1565855673150") != r.Base.Digest {
		t.Error("the base copy is not in the target registry by digest and tag")
	}

	two := e.profile("two", 1565855673150, 0, "b")
	two.Target.Repository = tg + "/acme/other"
	second, err := e.run(b, "", two)
	if err != nil {
		t.Fatal(err)
	}
	if st := stage(second[0], "base"); st.Status != publish.Kept || second[0].BaseBytesCopied != 0 || second[0].BaseBytesPulled != 0 {
		t.Errorf("second profile on the same base: %+v, copied %d, pulled %d", st, second[0].BaseBytesCopied, second[0].BaseBytesPulled)
	}

	// Turned off: nothing is copied, and what BuildKit must pull is said.
	off := e.profile("three", 1567933846116, 0, "c")
	off.BaseCache.Off = true
	third, err := e.run(b, "", off)
	if err != nil {
		t.Fatal(err)
	}
	if st := stage(third[0], "base"); st.Status != publish.Off || third[0].BaseBytesCopied != 0 {
		t.Errorf("baseCache: false: %+v", st)
	}
}

// TestBaseCacheMountRefused: when the target registry refuses cross-repository mounts,
// the result says the base's layers are pulled and uploaded, and how much. The real
// distribution registry keeps blobs per repository (go-containerregistry's in-process one
// does not), behind a proxy that turns mount requests into plain upload sessions.
func TestBaseCacheMountRefused(t *testing.T) {
	testenv.Need(t, "registry")
	real, err := testenv.StartRegistry(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	backend, _ := url.Parse("http://" + real.Host)
	var mounts atomic.Int32
	rp := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); r.Method == http.MethodPost && q.Get("mount") != "" {
			mounts.Add(1)
			q.Del("mount")
			q.Del("from")
			r.URL.RawQuery = q.Encode()
		}
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	e := newEnv(t)
	e.target = host
	e.reg.Insecure = append(e.reg.Insecure, host, real.Host)
	res, err := e.run(&fakeBuilder{reg: e.reg}, "", e.profile("one", 1565855673150, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if r.BaseBytesCopied <= 0 || r.BaseBytesPulled <= 0 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "refused a cross-repository mount") {
		t.Errorf("copied %d, pulled %d, notes %q", r.BaseBytesCopied, r.BaseBytesPulled, r.Notes)
	}
	if mounts.Load() == 0 {
		t.Error("no mount was asked for")
	}
}
