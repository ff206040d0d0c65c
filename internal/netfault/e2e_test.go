package netfault_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/testenv"
)

// startDistribution starts the CNCF distribution registry (bin/registry).
func startDistribution(t *testing.T) *testenv.Registry {
	t.Helper()
	testenv.Need(t, "registry")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", reg.LogTail(40))
		}
		reg.Close()
	})
	return reg
}

// TestDistributionRegistry pushes through the proxy to the distribution registry,
// which answers upload requests with absolute URLs naming itself: every request still
// goes through the proxy. Then a 503 on the manifest leaves nothing published, and a
// reset after the registry stored the manifest leaves it published while the client
// saw a failure.
func TestDistributionRegistry(t *testing.T) {
	reg := startDistribution(t)
	ctx := testCtx(t, 60*time.Second)
	p := startProxy(t, reg.Host, netfault.Options{})

	// The registry itself answers with its own absolute URL: what the proxy must rewrite.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+reg.Host+"/v2/probe/blobs/uploads/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "http://"+reg.Host+"/v2/probe/blobs/uploads/") {
		t.Fatalf("the registry's upload Location is %q; this test expects an absolute URL naming %s", loc, reg.Host)
	}

	img := randomImage(t, 128<<10, 2)
	if err := remote.Write(ref(t, p.Host(), "acme/wso2is:5.8.0"), img, noRetry(ctx, p)...); err != nil {
		t.Fatalf("pushing through the proxy: %v", err)
	}
	got, err := remote.Head(ref(t, p.Host(), "acme/wso2is:5.8.0"), noRetry(ctx, p)...)
	if err != nil || got.Digest != digest(t, img) {
		t.Fatalf("pulled %v (%v), pushed %s", got, err, digest(t, img))
	}
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	rewritten := 0
	for _, e := range p.Requests() {
		if e.Location == "" {
			continue
		}
		if !strings.HasPrefix(e.Location, p.URL()+"/v2/") {
			t.Errorf("%s %s: Location %q does not name the proxy", e.Method, e.Path, e.Location)
		}
		rewritten++
	}
	if rewritten < 6 { // POST and PATCH for each of 3 blobs, at least
		t.Errorf("%d answers carried a Location, want ≥ 6", rewritten)
	}
	served, err := reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"PATCH", "PUT"} {
		n := 0
		for _, r := range served {
			if r.Method == m && r.Kind == "upload" {
				n++
			}
		}
		if pn := p.Count(m, reUploads); n != 3 || pn != n {
			t.Errorf("upload %ss: registry served %d, proxy logged %d; want 3 both (the 3 blobs, all through the proxy)", m, n, pn)
		}
	}

	// A 503 on the manifest: nothing published.
	img2 := randomImage(t, 4<<10, 1)
	rule := addRule(t, p, netfault.Rule{Method: "PUT", Path: reManifest, Times: 1, Action: netfault.Respond(503)})
	err = remote.Write(ref(t, p.Host(), "acme/wso2is:5.9.0"), img2, noRetry(ctx, p)...)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != 503 {
		t.Fatalf("push with the manifest refused: %v; want a 503", err)
	}
	if _, err := remote.Head(ref(t, reg.Host, "acme/wso2is:5.9.0"), remote.WithContext(ctx)); err == nil {
		t.Error("the registry has the manifest the proxy refused")
	}
	if p.Fired(rule) != 1 {
		t.Errorf("Fired(%s) = %d, want 1", rule, p.Fired(rule))
	}

	// A reset after the registry stored the manifest: published, yet the client failed.
	addRule(t, p, netfault.Rule{Method: "PUT", Path: reManifest, Times: 1, Action: netfault.Reset(netfault.AfterBackend)})
	err = remote.Write(ref(t, p.Host(), "acme/wso2is:5.9.0"), img2, noRetry(ctx, p)...)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("push with the answer reset: %v; want ECONNRESET", err)
	}
	d, err := remote.Head(ref(t, reg.Host, "acme/wso2is:5.9.0"), remote.WithContext(ctx))
	if err != nil || d.Digest != digest(t, img2) {
		t.Errorf("registry has %v (%v); want the manifest %s stored before the reset", d, err, digest(t, img2))
	}
}

// TestBuildkitPush: BuildKit's own pusher (inside buildkitd, configured with the proxy's
// port as a plain-HTTP registry) pushes through the proxy; a manifest PUT that always
// fails makes the solve fail with nothing published; without the rule the same build
// is pushed with the same digest.
func TestBuildkitPush(t *testing.T) {
	testenv.Need(t, "buildkitd", "registry")
	reg := startDistribution(t)
	ctx := testCtx(t, 3*time.Minute)
	p := startProxy(t, reg.Host, netfault.Options{})
	bk, err := testenv.StartBuildkitd(ctx, t.TempDir(), []string{p.Host()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd log:\n%s", bk.LogTail(40))
		}
		bk.Close()
	})
	c, err := bk.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	def, err := llb.Scratch().File(llb.Mkfile("/hello", 0o644, []byte("through netfault\n"))).Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := p.Host() + "/acme/bk:v1"
	solve := func() (string, error) {
		resp, err := c.Solve(ctx, def, client.SolveOpt{Exports: []client.ExportEntry{{
			Type:  client.ExporterImage,
			Attrs: map[string]string{"name": target, "push": "true"},
		}}}, nil)
		if err != nil {
			return "", err
		}
		return resp.ExporterResponse[exptypes.ExporterImageDigestKey], nil
	}

	rule := addRule(t, p, netfault.Rule{Name: "no-manifest", Method: "PUT", Path: reManifest, Action: netfault.Respond(503)})
	if _, err := solve(); err == nil {
		t.Fatal("solve succeeded although every manifest PUT answered 503")
	}
	if p.Fired(rule) == 0 {
		t.Fatalf("rule %s never fired; requests: %+v", rule, p.Requests())
	}
	if _, err := remote.Head(ref(t, reg.Host, "acme/bk:v1"), remote.WithContext(ctx)); err == nil {
		t.Error("the registry has the manifest the proxy refused")
	}

	// The blobs went up in that first solve, through the proxy (upload URLs rewritten),
	// before the manifest was refused.
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Requests() {
		t.Logf("%s %s: %d %s %q", e.Method, e.Path, e.Status, e.Action, e.Location)
		if e.Location != "" && !strings.HasPrefix(e.Location, p.URL()+"/") {
			t.Errorf("%s %s: Location %q does not name the proxy", e.Method, e.Path, e.Location)
		}
	}
	if n := p.Count("PUT", reUploads); n < 2 {
		t.Errorf("blob upload PUTs through the proxy: %d, want ≥ 2 (the layer and the config)", n)
	}
	p.Clear()
	p.ClearLog()
	pushed, err := solve()
	if err != nil {
		t.Fatalf("solve through the proxy: %v", err)
	}
	d, err := remote.Head(ref(t, reg.Host, "acme/bk:v1"), remote.WithContext(ctx))
	if err != nil || d.Digest.String() != pushed {
		t.Fatalf("registry has %v (%v), buildkit reported %s", d, err, pushed)
	}
	if err := p.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Count("PUT", reManifest) != 1 {
		t.Errorf("manifest PUTs through the proxy: %d, want 1; requests: %+v", p.Count("PUT", reManifest), p.Requests())
	}
	for _, e := range p.Requests() {
		if e.Location != "" && !strings.HasPrefix(e.Location, p.URL()+"/") {
			t.Errorf("%s %s: Location %q does not name the proxy", e.Method, e.Path, e.Location)
		}
	}
}

// TestDistributionShaper: a bare Shaper in front of the distribution registry keeps the
// client on the shaper (the registry builds upload URLs from the Host header, which the
// shaper does not touch), and "100 Mbit/s, 20 ms" makes a 4 MiB push take at least the
// 0.34 s those 4 MiB need on such a link.
func TestDistributionShaper(t *testing.T) {
	reg := startDistribution(t)
	ctx := testCtx(t, 60*time.Second)
	shape := netfault.Shape{Up: netfault.MbitPerSecond(100), Down: netfault.MbitPerSecond(100), RTT: 20 * time.Millisecond}
	sh, err := netfault.StartShaper(ctx, reg.Host, shape)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	img := randomImage(t, 2<<20, 2)
	start := time.Now()
	if err := remote.Write(ref(t, sh.Host(), "acme/app:1"), img, remote.WithContext(ctx)); err != nil {
		t.Fatalf("pushing through the shaper: %v", err)
	}
	took := time.Since(start)
	st := sh.Stats()
	t.Logf("4 MiB push over %d B/s up, RTT %s: %s; %+v", shape.Up, shape.RTT, took, st)
	if st.Up < 4<<20 {
		t.Errorf("shaper carried %d bytes up, want ≥ 4 MiB: the uploads went around it", st.Up)
	}
	if floor := time.Duration(float64(4<<20) / float64(shape.Up) * float64(time.Second)); took < floor {
		t.Errorf("push took %s, less than the %s that 4 MiB need at %d B/s", took, floor, shape.Up)
	}
	d, err := remote.Head(ref(t, reg.Host, "acme/app:1"), remote.WithContext(ctx))
	if err != nil || d.Digest != digest(t, img) {
		t.Errorf("registry has %v (%v), want %s", d, err, digest(t, img))
	}
}
