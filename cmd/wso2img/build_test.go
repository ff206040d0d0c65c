package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
)

// buildResult is one element of `build --json`.
type buildResult struct {
	Profile     string   `json:"profile"`
	Image       string   `json:"image"`
	Digest      string   `json:"digest"`
	Tags        []string `json:"tags"`
	Base        struct{ Ref, Digest string }
	Signed      bool  `json:"signed"`
	LayersAdded int   `json:"layersAdded"`
	BytesAdded  int64 `json:"bytesAdded"`
	Pushed      bool  `json:"pushed"`
	Skipped     bool  `json:"skipped"`
	// BaseBytesCopied and BaseBytesPulled: what crossed from the base's registry.
	BaseBytesCopied int64    `json:"baseBytesCopied"`
	BaseBytesPulled int64    `json:"baseBytesPulled"`
	Notes           []string `json:"notes"`
	Stages          []struct {
		Stage, Status, Detail string
	} `json:"stages"`
}

// decodeBuilds reads `build --json`.
func decodeBuilds(t *testing.T, stdout string) []buildResult {
	t.Helper()
	var out []buildResult
	if err := json.Unmarshal([]byte(stdout), &out); err != nil || len(out) == 0 {
		t.Fatalf("build --json is not one JSON document with results: %v\n%s", err, stdout)
	}
	return out
}

// tarOf is a layer's tar holding one file.
func tarOf(path, content string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	_, _ = tw.Write([]byte(content))
	_ = tw.Close()
	return buf.Bytes()
}

func (w *world) build(t *testing.T, bk *testenv.Buildkitd, target string, extra ...string) (result, []buildResult) {
	t.Helper()
	args := append([]string{"build", "--json", "--progress", "plain", "--buildkit-host", bk.Addr, "--registry", target}, w.flags()...)
	r := runCLI(t, append(args, extra...)...)
	var out []buildResult
	if r.stdout != "" {
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("build --json is not one JSON document: %v\n%s", err, r.stdout)
		}
	}
	return r, out
}

func remoteImage(t *testing.T, ref string) (v1.Image, *remote.Descriptor) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(r)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	if desc.MediaType.IsIndex() {
		return nil, desc
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	return img, desc
}

// layerFiles reads a layer's entries by path.
func layerFiles(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	contents := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		files[name] = h
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			contents[name] = string(b)
			h.PAXRecords = map[string]string{"content": contents[name]}
		}
	}
	return files
}

func TestBuild(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	baseDigest := w.pushIS58()
	jar := []byte("PK\x03\x04 a JDBC driver")
	jarURL, jarSum := w.vendor.serve(t, "/maven2/mysql-connector-j-8.0.33.jar", jar, "good")
	w.file("webapps/console/suid.sh", "#!/bin/sh\necho hi\n", 0o755)
	file := w.profile("acme-is.yaml", isProfile(w, jarURL, jarSum, "labels: {team: platform}\nenv: {JAVA_OPTS: \"-Xmx1g\"}\n"))
	// A setuid bit on a local file must not reach the image.
	if err := os.Chmod(filepath.Join(w.dir, "webapps/console/suid.sh"), 0o4755); err != nil {
		t.Fatal(err)
	}

	before, _ := reg.Requests()
	r, out := w.build(t, bk, w.prefix+"/out", file)
	if r.code != 0 {
		t.Fatalf("build exit %d:\n%s", r.code, r.stderr)
	}
	res := out[0]
	repo := w.prefix + "/out/wso2is"
	if res.Image != repo || res.Base.Digest != baseDigest || res.LayersAdded != 1 || res.BytesAdded <= 0 || !res.Pushed {
		t.Errorf("result = %+v", res)
	}
	if !slices.Equal(res.Tags, []string{"5.8.0.1565855673150-alpine3.10", "5.8.0-alpine3.10"}) {
		t.Errorf("tags = %v", res.Tags)
	}

	img, _ := remoteImage(t, repo+"@"+res.Digest)
	base, _ := remoteImage(t, w.prefix+"/wso2is@"+baseDigest)
	for _, tag := range res.Tags {
		if _, desc := remoteImage(t, repo+":"+tag); desc.Digest.String() != res.Digest {
			t.Errorf("tag %s names %s, want %s", tag, desc.Digest, res.Digest)
		}
	}

	// Every base layer is there, unchanged, and exactly one layer is added.
	bm, _ := base.Manifest()
	m, _ := img.Manifest()
	if len(m.Layers) != len(bm.Layers)+1 {
		t.Fatalf("image has %d layers, base %d: want exactly one added", len(m.Layers), len(bm.Layers))
	}
	for i, l := range bm.Layers {
		if m.Layers[i].Digest != l.Digest || m.Layers[i].Size != l.Size {
			t.Errorf("base layer %d changed: %s → %s", i, l.Digest, m.Layers[i].Digest)
		}
	}

	// The added layer: each file at its path, with its owner, mode and content.
	layers, _ := img.Layers()
	files := layerFiles(t, layers[len(layers)-1])
	home := "/home/wso2carbon/wso2is-5.8.0"
	for path, want := range map[string]struct {
		mode     int64
		uid, gid int
		content  string
	}{
		"/home":            {0o755, 0, 0, ""},
		"/home/wso2carbon": {0o755, 802, 802, ""},
		home + "/repository/components/lib/mysql-connector-j-8.0.33.jar":  {0o644, 802, 802, string(jar)},
		home + "/repository/conf/deployment.toml":                         {0o640, 802, 802, "[server]\nhostname = \"is.acme.example\"\n"},
		home + "/repository/deployment/server/webapps/console/index.html": {0o644, 802, 802, "<h1>console</h1>\n"},
		home + "/repository/deployment/server/webapps/console/bin/run.sh": {0o755, 802, 802, "#!/bin/sh\n"},
		home + "/repository/deployment/server/webapps/console/suid.sh":    {0o755, 802, 802, "#!/bin/sh\necho hi\n"},
	} {
		h, ok := files[path]
		if !ok {
			t.Errorf("%s is not in the added layer", path)
			continue
		}
		if h.Mode&0o7777 != want.mode || h.Uid != want.uid || h.Gid != want.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", path, h.Mode&0o7777, h.Uid, h.Gid, want.mode, want.uid, want.gid)
		}
		if want.content != "" && h.PAXRecords["content"] != want.content {
			t.Errorf("%s holds %q, want %q", path, h.PAXRecords["content"], want.content)
		}
		if h.ModTime.Unix() != 1565855673 {
			t.Errorf("%s mtime %v, want the update's time", path, h.ModTime)
		}
	}
	for path, h := range files {
		if h.Mode&0o6000 != 0 {
			t.Errorf("%s has setuid/setgid bits (%o)", path, h.Mode)
		}
		if !strings.HasPrefix(path, "/home") {
			t.Errorf("%s is outside /home", path)
		}
	}

	// The config: non-root user, exactly the profile's ports, the base's entrypoint and
	// env, our labels and not the vendor's OCI labels.
	cf, _ := img.ConfigFile()
	if cf.Config.User != "802:802" {
		t.Errorf("user %q", cf.Config.User)
	}
	var ports []string
	for p := range cf.Config.ExposedPorts {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	if !slices.Equal(ports, []string{"4000/tcp", "9443/tcp", "9763/tcp"}) {
		t.Errorf("ports %v", ports)
	}
	if !slices.Contains(cf.Config.Env, "WSO2_SERVER_HOME="+home) || !slices.Contains(cf.Config.Env, "JAVA_OPTS=-Xmx1g") {
		t.Errorf("env %v", cf.Config.Env)
	}
	if len(cf.Config.Entrypoint) == 0 || cf.Config.Entrypoint[0] != "/home/wso2carbon/docker-entrypoint.sh" {
		t.Errorf("entrypoint %v", cf.Config.Entrypoint)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.base.name":   "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10",
		"org.opencontainers.image.base.digest": baseDigest,
		"org.opencontainers.image.created":     "2019-08-15T07:54:33Z",
		"org.opencontainers.image.version":     "5.8.0.1565855673150-alpine3.10",
		"io.wso2img.product":                   "wso2is",
		"io.wso2img.wum-timestamp":             "1565855673150",
		"team":                                 "platform",
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if v, ok := cf.Config.Labels["org.opencontainers.image.vendor"]; ok {
		t.Errorf("the base's vendor label %q describes our image", v)
	}

	// No base layer blob was downloaded: the registry mounted them into the new
	// repository instead. (The base's config, a small JSON, is read to plan.)
	after, _ := reg.Requests()
	baseLayers := map[string]bool{}
	for _, l := range bm.Layers {
		baseLayers[l.Digest.String()] = true
	}
	mounted := 0
	for _, rq := range after[len(before):] {
		if rq.Kind == "blob" && rq.Method == "GET" && baseLayers[rq.Reference] {
			t.Errorf("a base layer was downloaded: %s %s (%d bytes)", rq.Method, rq.Path, rq.Bytes)
		}
		if rq.Kind == "upload" && strings.Contains(rq.Query, "mount=") {
			mounted++
		}
	}
	if mounted < len(bm.Layers) {
		t.Errorf("%d cross-repository mounts, want one per base layer (%d)", mounted, len(bm.Layers))
	}

	t.Run("same image again is a no-op", func(t *testing.T) {
		before, _ := reg.Requests()
		r, out := w.build(t, bk, w.prefix+"/out", file)
		if r.code != 0 || out[0].Digest != res.Digest || out[0].Pushed {
			t.Fatalf("rebuild: exit %d, %+v\n%s", r.code, out, r.stderr)
		}
		after, _ := reg.Requests()
		for _, rq := range after[len(before):] {
			if rq.Method == "PUT" && rq.Kind == "manifest" && strings.HasPrefix(rq.Reference, "sha256:") {
				t.Errorf("the identical image was pushed again: %s %s", rq.Method, rq.Path)
			}
			if rq.Method == "POST" || rq.Method == "PATCH" {
				t.Errorf("a blob was uploaded again: %s %s", rq.Method, rq.Path)
			}
		}
	})

	t.Run("reproducible with a pruned cache", func(t *testing.T) {
		if err := bk.Prune(context.Background()); err != nil {
			t.Fatal(err)
		}
		r, out := w.build(t, bk, w.prefix+"/again", file)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if out[0].Digest != res.Digest {
			t.Errorf("after pruning the cache the same profile gave %s, before %s", out[0].Digest, res.Digest)
		}
	})

	t.Run("a unique tag never moves", func(t *testing.T) {
		w.file("conf/deployment.toml", "[server]\nhostname = \"changed.example\"\n", 0o644)
		before, _ := reg.Requests()
		r, _ := w.build(t, bk, w.prefix+"/out", file)
		if r.code != 1 || !strings.Contains(r.stderr, "bump release") || !strings.Contains(r.stderr, res.Digest) {
			t.Fatalf("exit %d, want 1 and advice to bump release:\n%s", r.code, r.stderr)
		}
		after, _ := reg.Requests()
		for _, rq := range after[len(before):] {
			if rq.Method != "GET" && rq.Method != "HEAD" {
				t.Errorf("the refused build wrote to the registry: %s %s", rq.Method, rq.Path)
			}
		}
		for _, tag := range res.Tags {
			if _, desc := remoteImage(t, repo+":"+tag); desc.Digest.String() != res.Digest {
				t.Errorf("tag %s moved to %s", tag, desc.Digest)
			}
		}
		// A new release publishes a new unique tag and moves the floating one.
		release := w.profile("acme-is.yaml", isProfile(w, jarURL, jarSum, "release: 2\nlabels: {team: platform}\nenv: {JAVA_OPTS: \"-Xmx1g\"}\n"))
		r, out := w.build(t, bk, w.prefix+"/out", release)
		if r.code != 0 || !slices.Equal(out[0].Tags, []string{"5.8.0.1565855673150.2-alpine3.10", "5.8.0-alpine3.10"}) {
			t.Fatalf("release 2: exit %d %+v\n%s", r.code, out, r.stderr)
		}
		if _, desc := remoteImage(t, repo+":5.8.0-alpine3.10"); desc.Digest.String() != out[0].Digest {
			t.Errorf("the floating tag did not follow the new release")
		}
		if _, desc := remoteImage(t, repo+":5.8.0.1565855673150-alpine3.10"); desc.Digest.String() != res.Digest {
			t.Errorf("the first unique tag moved")
		}
	})
}

// TestBuildPushesNothingOnFailure: a failed verification leaves the registry as it was.
func TestBuildPushesNothingOnFailure(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	goodURL, goodSum := w.vendor.serve(t, "/good.jar", []byte("good"), "good")
	badURL, _ := w.vendor.serve(t, "/bad.jar", []byte("bad"), "other")
	good := w.profile("good.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {url: %s, sha256: \"%s\", dest: lib/}\n", goodURL, goodSum))
	wrongSum := w.profile("sum.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {url: %s, sha256: \"%s\", dest: lib/}\n", goodURL, strings.Repeat("1", 64)))
	badSig := w.profile("sig.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {url: %s, sha256: \"%s\", signature: %s.asc, dest: lib/}\n%s", badURL, sumOf("bad"), badURL, w.vendor.gpgYAML()))

	before, _ := reg.Requests()
	for _, file := range []string{wrongSum, badSig} {
		r, out := w.build(t, bk, w.prefix+"/out", file)
		if r.code != 3 || len(out) != 0 {
			t.Errorf("%s: exit %d, results %v, want 3 and nothing built:\n%s", filepath.Base(file), r.code, out, r.stderr)
		}
	}
	after, _ := reg.Requests()
	for _, rq := range after[len(before):] {
		if rq.Method != "GET" && rq.Method != "HEAD" {
			t.Errorf("a failed verification wrote to the registry: %s %s", rq.Method, rq.Path)
		}
		if strings.Contains(rq.Repository, "/out/") {
			t.Errorf("a failed verification touched the target: %s %s", rq.Method, rq.Path)
		}
	}

	// Several profiles: the good one is built, the bad one is not, and the exit code is
	// the verification failure's.
	r, out := w.build(t, bk, w.prefix+"/out", good, wrongSum)
	if r.code != 3 || len(out) != 1 || out[0].Profile != "good" {
		t.Errorf("good + bad: exit %d, %+v, want 3 with the good one built:\n%s", r.code, out, r.stderr)
	}
}

func TestBuildMultiPlatform(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	o := standin.Options{Product: "wso2is", Version: "7.1.0", Ports: []int{4000, 9763, 9443}, Labels: map[string]string{"update_level": "3"}}
	baseDigest := w.pushBase(o, []string{"wso2-is/is:7.1.0.3"}, amd64, arm64)
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	file := w.profile("is7.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\n"+unsignedStandin+"platforms: [linux/amd64, linux/arm64]\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")

	r, out := w.build(t, bk, w.prefix+"/out", file)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	if !slices.Equal(out[0].Tags, []string{"7.1.0.3", "7.1.0.0"}) || out[0].Base.Digest != baseDigest {
		t.Errorf("result %+v", out[0])
	}
	_, desc := remoteImage(t, w.prefix+"/out/wso2is@"+out[0].Digest)
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatalf("a two-platform build is not an index: %v", err)
	}
	im, _ := idx.IndexManifest()
	var got []string
	for _, m := range im.Manifests {
		got = append(got, m.Platform.OS+"/"+m.Platform.Architecture)
		img, _ := idx.Image(m.Digest)
		cf, _ := img.ConfigFile()
		if cf.Architecture != m.Platform.Architecture || cf.Config.User != "10802:10802" && cf.Config.User != "802:802" {
			t.Errorf("%s config: arch %s user %s", m.Platform.Architecture, cf.Architecture, cf.Config.User)
		}
		layers, _ := img.Layers()
		if f := layerFiles(t, layers[len(layers)-1]); f["/home/wso2carbon/wso2is-7.1.0/repository/conf/deployment.toml"] == nil {
			t.Errorf("%s: deployment.toml missing", m.Platform.Architecture)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", got)
	}

	// A platform the base lacks is an error, and nothing is pushed.
	s390 := w.profile("s390.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\n"+unsignedStandin+"platforms: [linux/amd64, linux/s390x]\n")
	r, _ = w.build(t, bk, w.prefix+"/none", s390)
	if r.code != 2 || !strings.Contains(r.stderr, "no linux/s390x image") {
		t.Errorf("missing platform: exit %d:\n%s", r.code, r.stderr)
	}
}

func TestBuildLocalOutput(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")
	dir := filepath.Join(t.TempDir(), "oci")
	args := append([]string{"build", "--json", "--progress", "quiet", "--buildkit-host", bk.Addr, "--output", "oci:" + dir}, w.flags()...)
	r := runCLI(t, append(args, file)...)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	var out []buildResult
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("--output oci: is not an OCI layout: %v", err)
	}
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != out[0].Digest {
		t.Errorf("layout index %+v, want the built digest %s", im.Manifests, out[0].Digest)
	}

	tarFile := filepath.Join(t.TempDir(), "image.tar")
	args = append([]string{"build", "--progress", "quiet", "--buildkit-host", bk.Addr, "--output", "tar:" + tarFile}, w.flags()...)
	if r := runCLI(t, append(args, file)...); r.code != 0 {
		t.Fatalf("tar: exit %d:\n%s", r.code, r.stderr)
	}
	if fi, err := os.Stat(tarFile); err != nil || fi.Size() == 0 {
		t.Errorf("--output tar: wrote %v, %v", fi, err)
	}
}

// TestBuildRegistryAuth: credentials come from the docker config, for BuildKit (pull of
// the base, push) and for go-containerregistry (resolve, tag) alike.
func TestBuildRegistryAuth(t *testing.T) {
	testenv.Need(t, "registry", "buildkitd")
	ctx := context.Background()
	reg, err := testenv.StartRegistry(ctx, t.TempDir(), testenv.WithBasicAuth("acme", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	bk, err := testenv.StartBuildkitd(ctx, t.TempDir(), []string{reg.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })

	dockerConfig := func(auth string) {
		dir := t.TempDir()
		cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte(auth)))
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
	}
	dockerConfig("acme:s3cret")
	w := newWorld(t, reg)
	w.pushIS58()
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n")

	r, out := w.build(t, bk, w.prefix+"/out", file)
	if r.code != 0 || len(out) != 1 || !out[0].Pushed {
		t.Fatalf("with credentials: exit %d %+v\n%s", r.code, out, r.stderr)
	}

	dockerConfig("acme:wrong")
	r, _ = w.build(t, bk, w.prefix+"/out2", file)
	if r.code != 1 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("with wrong credentials: exit %d, want 1 and the registry's refusal:\n%s", r.code, r.stderr)
	}
}

// unsignedStandin turns off the stock profiles' check of WSO2's signature: the stand-in
// bases of these tests are not signed by WSO2 (TestStockBaseVerified checks that the
// check is on and refuses them).
const unsignedStandin = "base: {verify: false}\n"
