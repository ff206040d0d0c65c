package testenv_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"

	"github.com/wso2img/wso2img/internal/testenv"
)

func startRegistry(t *testing.T) *testenv.Registry {
	t.Helper()
	testenv.Need(t, "registry")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", reg.LogTail(40))
		}
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	return reg
}

func TestRegistryPushPullRequests(t *testing.T) {
	reg := startRegistry(t)

	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host+"/test/random:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("pushing: %v", err)
	}
	got, err := remote.Image(ref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pulling: %v", err)
	}
	wantDigest, _ := img.Digest()
	gotDigest, err := got.Digest()
	if err != nil || gotDigest != wantDigest {
		t.Fatalf("pulled digest = %v (%v), want %v", gotDigest, err, wantDigest)
	}
	// Download one layer only, so that the log can prove which blobs were fetched.
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	fetched, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	notFetched, _ := layers[1].Digest()

	reqs, err := reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		method string
		kind   string
		ref    string
		status int
		bytes  int64 // -1: any
	}{
		{"ping", "GET", "base", "", 200, -1},
		{"upload started", "POST", "upload", "", 202, -1},
		{"manifest pushed", "PUT", "manifest", "v1", 201, -1},
		{"manifest pulled", "GET", "manifest", "v1", 200, -1},
		{"layer pulled", "GET", "blob", fetched.String(), 200, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, q := range reqs {
				if q.Method == tc.method && q.Kind == tc.kind && q.Status == tc.status &&
					(tc.ref == "" || q.Reference == tc.ref) && (tc.bytes < 0 || q.Bytes == tc.bytes) {
					if tc.kind != "base" && q.Repository != "test/random" {
						t.Errorf("repository = %q, want test/random", q.Repository)
					}
					return
				}
			}
			t.Errorf("no %s %s %s -> %d (%d bytes) among:\n%s", tc.method, tc.kind, tc.ref, tc.status, tc.bytes, formatRequests(reqs))
		})
	}
	for _, q := range reqs {
		if q.Method == "GET" && q.Kind == "blob" && q.Reference == notFetched.String() {
			t.Errorf("layer %s was downloaded but never read: %+v", notFetched, q)
		}
	}
	// A failed request is recorded too, with the registry's error code.
	missing, err := name.ParseReference(reg.Host+"/test/random:nope", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(missing, remote.WithContext(t.Context())); err == nil {
		t.Fatal("HEAD of a missing tag succeeded")
	}
	reqs, err = reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	last := reqs[len(reqs)-1]
	if last.Method != "HEAD" || last.Kind != "manifest" || last.Reference != "nope" || last.Status != 404 {
		t.Errorf("last request = %+v, want HEAD manifest nope -> 404", last)
	}
}

func TestRegistryCloseTwice(t *testing.T) {
	reg := startRegistry(t)
	if err := reg.Close(); err != nil {
		t.Fatal(err)
	}
	if err := reg.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ref, _ := name.ParseReference(reg.Host+"/test/random:v1", name.Insecure)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := remote.Head(ref, remote.WithContext(ctx)); err == nil {
		t.Error("registry still answers after Close")
	}
}

func TestRegistriesInParallel(t *testing.T) {
	testenv.Need(t, "registry")
	ctx := t.Context()
	a, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Host == b.Host {
		t.Fatalf("two registries on %s", a.Host)
	}
}

func TestBuildkitd(t *testing.T) {
	testenv.Need(t, "buildkitd", "registry")
	reg := startRegistry(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	bk, err := testenv.StartBuildkitd(ctx, t.TempDir(), []string{reg.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("buildkitd log:\n%s", bk.LogTail(60))
		}
		if err := bk.Close(); err != nil {
			t.Error(err)
		}
	})
	if !strings.HasPrefix(bk.Addr, "unix:///") || len(strings.TrimPrefix(bk.Addr, "unix://")) > 107 {
		t.Errorf("Addr = %q, want a unix socket path that fits sun_path", bk.Addr)
	}
	cfg, err := os.ReadFile(bk.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("[registry.%q]\n  http = true\n  insecure = true", reg.Host); !strings.Contains(string(cfg), want) {
		t.Errorf("buildkitd.toml lacks %q:\n%s", want, cfg)
	}

	c, err := bk.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 {
		t.Fatalf("ListWorkers = %d workers, want 1", len(ws))
	}
	if got := ws[0].Labels["org.mobyproject.buildkit.worker.executor"]; got != "oci" {
		t.Errorf("worker executor = %q, want oci", got)
	}
	if got := ws[0].Labels["org.mobyproject.buildkit.worker.snapshotter"]; got != "overlayfs" {
		t.Errorf("worker snapshotter = %q, want overlayfs", got)
	}

	// Round trip through the insecure registry: pull an image built from nothing, push
	// it back under another name. This proves the [registry] configuration.
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := name.ParseReference(reg.Host+"/test/src:v1", name.Insecure)
	if err := remote.Write(src, img, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	def, err := llb.Image(src.String()).File(llb.Mkfile("/hello", 0o644, []byte("hello\n"))).Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Solve(ctx, def, client.SolveOpt{
		Exports: []client.ExportEntry{{
			Type:  client.ExporterImage,
			Attrs: map[string]string{"name": reg.Host + "/test/dst:v1", "push": "true"},
		}},
	}, nil)
	if err != nil {
		t.Fatalf("solve: %v", err)
	}
	pushed := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	dst, _ := name.ParseReference(reg.Host+"/test/dst:v1", name.Insecure)
	desc, err := remote.Head(dst, remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pushed image not in the registry: %v", err)
	}
	if desc.Digest.String() != pushed {
		t.Errorf("registry has %s, buildkit reported %s", desc.Digest, pushed)
	}

	du, err := c.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(du) == 0 {
		t.Fatal("no build cache after a solve")
	}
	if err := bk.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	du, err = c.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(du) != 0 {
		t.Errorf("%d cache records left after Prune", len(du))
	}

	if err := bk.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bk.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	lctx, lcancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer lcancel()
	if _, err := c.ListWorkers(lctx); err == nil {
		t.Error("buildkitd still answers after Close")
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), bk.Dir+"/") {
		t.Errorf("mounts left under %s after Close", bk.Dir)
	}
}

func TestBuildkitdLongDirUsesShortSocket(t *testing.T) {
	testenv.Need(t, "buildkitd")
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 40))
	bk, err := testenv.StartBuildkitd(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	sock := strings.TrimPrefix(bk.Addr, "unix://")
	if !strings.HasPrefix(sock, "/tmp/") || len(sock) > 107 {
		t.Errorf("socket %q: want a short path under /tmp", sock)
	}
	if err := bk.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left after Close (%v)", filepath.Dir(sock), err)
	}
}

func TestBin(t *testing.T) {
	if _, err := testenv.Bin("no-such-tool-wso2img"); err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("Bin(missing) error = %v, want one naming make tools", err)
	}
	if p, err := testenv.Bin("sh"); err != nil || !filepath.IsAbs(p) {
		t.Errorf("Bin(sh) = %q, %v; want an absolute path from $PATH", p, err)
	}
}

func TestTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	var b strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{1, "line 100"},
		{3, "line 98\nline 99\nline 100"},
	} {
		if got := testenv.Tail(p, tc.n); got != tc.want {
			t.Errorf("Tail(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := testenv.Tail(filepath.Join(t.TempDir(), "none"), 5); !strings.Contains(got, "cannot read") {
		t.Errorf("Tail(missing) = %q", got)
	}
}

func formatRequests(reqs []testenv.Request) string {
	var b strings.Builder
	for _, q := range reqs {
		fmt.Fprintf(&b, "  %s %s -> %d (%d bytes) kind=%s repo=%s ref=%s\n", q.Method, q.Path, q.Status, q.Bytes, q.Kind, q.Repository, q.Reference)
	}
	return b.String()
}

// recorder is a testing.TB that records Skipf and Fatalf instead of stopping the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestNeed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		e2e      string
		tools    []string
		wantSkip bool
		wantFail bool
	}{
		{"present", "", []string{"sh"}, false, false},
		{"missing skips", "", []string{"sh", "no-such-tool-wso2img"}, true, false},
		{"missing fails under e2e", "1", []string{"no-such-tool-wso2img"}, false, true},
		{"e2e other than 1 skips", "0", []string{"no-such-tool-wso2img"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(testenv.E2EVar, tc.e2e)
			r := &recorder{TB: t}
			testenv.Need(r, tc.tools...)
			if (r.skipped != "") != tc.wantSkip || (r.failed != "") != tc.wantFail {
				t.Fatalf("skipped=%q failed=%q; want skip %v, fail %v", r.skipped, r.failed, tc.wantSkip, tc.wantFail)
			}
			if msg := r.skipped + r.failed; msg != "" && !strings.Contains(msg, "no-such-tool-wso2img") {
				t.Errorf("message %q does not name the missing tool", msg)
			}
		})
	}
}
