package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/watch"
)

const (
	wum1 = 1565855673150
	wum2 = 1567933846116
)

func (w *world) watch(t *testing.T, target string, files ...string) []watch.Status {
	t.Helper()
	args := append([]string{"watch", "--json", "--registry", target}, w.flags()...)
	r := runCLI(t, append(args, files...)...)
	if r.code != 0 {
		t.Fatalf("watch exit %d:\n%s", r.code, r.stderr)
	}
	var out []watch.Status
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("watch --json: %v\n%s", err, r.stdout)
	}
	return out
}

// writes counts the requests since before that changed the registry.
func writes(t *testing.T, reg *testenv.Registry, before int) []string {
	t.Helper()
	all, err := reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	var w []string
	for _, rq := range all[before:] {
		if rq.Method != "GET" && rq.Method != "HEAD" {
			w = append(w, rq.Method+" "+rq.Path)
		}
	}
	return w
}

func requestCount(t *testing.T, reg *testenv.Registry) int {
	all, err := reg.Requests()
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func byProfile(st []watch.Status) map[string]watch.Status {
	m := map[string]watch.Status{}
	for _, s := range st {
		m[s.Profile] = s
	}
	return m
}

// TestScheduledRebuild is the nightly job: watch, then build --if-changed, on loopback
// registries, as WSO2 publishes a new update and moves a floating tag.
func TestScheduledRebuild(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	ctx := context.Background()
	is58 := func(created int64, label string) standin.Options {
		return standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(created), Labels: map[string]string{"build": label}}
	}
	w.pushBase(is58(wum1, "1"), []string{"wso2is:5.8.0.1565855673150-alpine3.10", "wso2is:5.8.0-alpine3.10"})
	w.pushBase(standin.Options{Product: "wso2mi", Version: "4.5.0", UID: 10802, GID: 10802, Ports: []int{8290, 8253}}, []string{"wso2-integrator/mi:4.5.0.3"})
	// Tags that are not updates of the scheme must be skipped, not choke the watch.
	junk, _ := random.Image(64, 1)
	for _, tag := range []string{"latest", "sha256-0123456789abcdef.sig", "5.8.0.12345-alpine3.10", "5.8.0-ubuntu", "nightly"} {
		if _, err := standin.Push(ctx, w.prefix+"/wso2is:"+tag, junk, true); err != nil {
			t.Fatal(err)
		}
	}
	w.file("conf/deployment.toml", "x = 1\n", 0o644)
	input := "inputs:\n  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml}\n"
	isFile := w.profile("is.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: latest}\n"+input)
	miFile := w.profile("mi.yaml", "extends: wso2mi-4.5.0\nupdate: {level: latest}\n"+unsignedStandin+input)
	floatFile := w.profile("float.yaml", "extends: wso2is-5.8.0-alpine\nbase: {image: docker.wso2.com/wso2is:5.8.0-alpine3.10}\nupdate: {wum: 1565855673150}\n"+input)
	target := w.prefix + "/out"
	built := func(out []buildResult) []string {
		var names []string
		for _, r := range out {
			if r.Pushed {
				names = append(names, r.Profile)
			}
		}
		slices.Sort(names)
		return names
	}

	// Nothing built yet: everything is due, and built.
	st := byProfile(w.watch(t, target, isFile, miFile))
	if !st["is"].Due || !st["mi"].Due || st["is"].Tag != "5.8.0.1565855673150-alpine3.10" || st["mi"].Tag != "4.5.0.3" {
		t.Fatalf("before any build: %+v", st)
	}
	r, out := w.build(t, bk, target, "--if-changed", isFile, miFile)
	if r.code != 0 || !slices.Equal(built(out), []string{"is", "mi"}) {
		t.Fatalf("first --if-changed: exit %d, built %v:\n%s", r.code, built(out), r.stderr)
	}

	// Run again: nothing is due, nothing is pushed.
	before := requestCount(t, reg)
	st = byProfile(w.watch(t, target, isFile, miFile))
	if st["is"].Due || st["mi"].Due {
		t.Errorf("just built, still due: %+v", st)
	}
	r, out = w.build(t, bk, target, "--if-changed", isFile, miFile)
	if r.code != 0 || len(built(out)) != 0 || !out[0].Skipped {
		t.Errorf("second --if-changed: exit %d, %+v", r.code, out)
	}
	if wr := writes(t, reg, before); len(wr) != 0 {
		t.Errorf("nothing changed, yet the registry was written: %v", wr)
	}

	// WSO2 publishes a newer WUM update and moves its floating tag: only IS is due.
	w.pushBase(is58(wum2, "2"), []string{"wso2is:5.8.0.1567933846116-alpine3.10", "wso2is:5.8.0-alpine3.10"})
	st = byProfile(w.watch(t, target, isFile, miFile))
	if !st["is"].Due || st["is"].Tag != "5.8.0.1567933846116-alpine3.10" || !strings.Contains(strings.Join(st["is"].Reasons, " "), "new update 5.8.0.1567933846116") {
		t.Errorf("after a new update, is: %+v", st["is"])
	}
	if st["mi"].Due {
		t.Errorf("mi has no new update, yet is due: %+v", st["mi"])
	}
	r, out = w.build(t, bk, target, "--if-changed", isFile, miFile)
	if r.code != 0 || !slices.Equal(built(out), []string{"is"}) {
		t.Fatalf("after a new update, --if-changed built %v (exit %d):\n%s", built(out), r.code, r.stderr)
	}
	before = requestCount(t, reg)
	if _, out = w.build(t, bk, target, "--if-changed", isFile, miFile); len(built(out)) != 0 {
		t.Errorf("run again after the update, built %v", built(out))
	}
	if wr := writes(t, reg, before); len(wr) != 0 {
		t.Errorf("the second run after the update wrote to the registry: %v", wr)
	}

	// A profile on a floating base tag: built once, then WSO2 moves the tag to another
	// digest. It is due ("base moved") and rebuilt as the next release of its update.
	w.pushBase(is58(wum1, "1"), []string{"wso2is:5.8.0-alpine3.10"})
	r, out = w.build(t, bk, w.prefix+"/float", "--if-changed", floatFile)
	if r.code != 0 || !slices.Equal(built(out), []string{"float"}) {
		t.Fatalf("floating base, first build: exit %d %+v:\n%s", r.code, out, r.stderr)
	}
	w.pushBase(is58(wum1, "rebuilt"), []string{"wso2is:5.8.0-alpine3.10"})
	st = byProfile(w.watch(t, w.prefix+"/float", floatFile))
	if f := st["float"]; !f.Due || !strings.Contains(strings.Join(f.Reasons, " "), "base moved") || f.Tag != "5.8.0.1565855673150.1-alpine3.10" {
		t.Errorf("after the floating tag moved: %+v", f)
	}
	r, out = w.build(t, bk, w.prefix+"/float", "--if-changed", floatFile)
	if r.code != 0 || len(out) != 1 || !out[0].Pushed || out[0].Tags[0] != "5.8.0.1565855673150.1-alpine3.10" {
		t.Fatalf("rebuild on the moved base: exit %d %+v:\n%s", r.code, out, r.stderr)
	}
	if _, desc := remoteImage(t, w.prefix+"/float/wso2is:5.8.0.1565855673150-alpine3.10"); desc.Digest.String() == out[0].Digest {
		t.Errorf("the first unique tag moved to the rebuilt image")
	}
	if _, out = w.build(t, bk, w.prefix+"/float", "--if-changed", floatFile); len(built(out)) != 0 {
		t.Errorf("run again on the moved base, built %v", built(out))
	}
}

// TestMirror copies a two-platform base and its cosign artifacts to a second registry,
// and builds from the copy.
func TestMirror(t *testing.T) {
	testenv.Need(t, "cosign-v2")
	reg, _ := needBuildkit(t)
	w := newWorld(t, reg)
	ctx := context.Background()
	dst, err := testenv.StartRegistry(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })

	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	base := w.pushBase(standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(wum1)},
		[]string{"wso2is:5.8.0.1565855673150-alpine3.10"}, amd64, arm64)
	// WSO2 signs its bases with cosign: the signature must travel with the copy.
	key, pub := signtest.Keys(t)
	s, err := sign.New(ctx, sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: registry.Options{Insecure: []string{reg.Host}}})
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := name.NewDigest(w.prefix+"/wso2is@"+base, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(ctx, upstream, nil); err != nil {
		t.Fatal(err)
	}
	sigTag := "wso2is:" + strings.Replace(base, ":", "-", 1) + ".sig"
	_, sigDesc := remoteImage(t, w.prefix+"/"+sigTag)
	sigDigest := sigDesc.Digest.String()
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nplatforms: [linux/amd64, linux/arm64]\n")

	prefix := dst.Host + "/mirror"
	r := runCLI(t, append([]string{"mirror", "--json", "--to", prefix, "--insecure-registry", dst.Host}, append(w.registryFlags(), file)...)...)
	if r.code != 0 {
		t.Fatalf("mirror exit %d:\n%s", r.code, r.stderr)
	}
	var res []struct {
		To, Digest, MirrorFlag string
		Copied                 []string
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res[0].To != prefix+"/wso2is:5.8.0.1565855673150-alpine3.10" || res[0].Digest != base || !slices.Equal(res[0].Copied, []string{".sig"}) || res[0].MirrorFlag != "docker.wso2.com="+prefix {
		t.Errorf("mirror result %+v", res[0])
	}
	_, desc := remoteImage(t, res[0].To)
	if desc.Digest.String() != base {
		t.Errorf("the copy has digest %s, the base %s", desc.Digest, base)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if im, _ := idx.IndexManifest(); len(im.Manifests) != 2 {
		t.Errorf("the copy has %d platforms, want 2", len(im.Manifests))
	}
	if _, d := remoteImage(t, prefix+"/"+sigTag); d.Digest.String() != sigDigest {
		t.Errorf("the signature's copy differs: %s, want %s", d.Digest, sigDigest)
	}
	// The signature still verifies at the mirror, with wso2img and with stock cosign.
	mirrored := prefix + "/wso2is@" + base
	if o, err := stockCosign(t, "cosign-v2", "verify", "--key", pub, mirrored); err != nil {
		t.Errorf("cosign verify at the mirror: %v\n%s", err, o)
	}
	verifyBase := w.profile("verified.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nplatforms: [linux/amd64, linux/arm64]\n"+
		"base: {verify: {key: "+pub+", insecureIgnoreTlog: true}}\n")
	if r := runCLI(t, "plan", "--insecure-registry", dst.Host, "--mirror", "docker.wso2.com="+prefix, "--cache-dir", w.cache, verifyBase); r.code != 0 {
		t.Errorf("plan with base.verify against the mirror: exit %d\n%s", r.code, r.stderr)
	}

	// Build from the mirror: the upstream registry is not read at all.
	bk2, err := testenv.StartBuildkitd(ctx, t.TempDir(), []string{reg.Host, dst.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk2.Close() })
	before := requestCount(t, reg)
	r = runCLI(t, "build", "--json", "--progress", "quiet", "--buildkit-host", bk2.Addr, "--registry", dst.Host+"/acme",
		"--insecure-registry", dst.Host, "--mirror", "docker.wso2.com="+prefix, "--cache-dir", w.cache, file)
	if r.code != 0 {
		t.Fatalf("build from the mirror: exit %d:\n%s", r.code, r.stderr)
	}
	var out []buildResult
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out[0].Base.Digest != base || out[0].Base.Ref != "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10" {
		t.Errorf("built from the mirror: %+v", out[0])
	}
	if n := requestCount(t, reg); n != before {
		t.Errorf("building from the mirror made %d request(s) to the upstream registry", n-before)
	}

	// The same through the profile's own base.mirror.
	own := w.profile("own.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\nbase: {mirror: "+prefix+"/wso2is}\n")
	r = runCLI(t, "plan", "--insecure-registry", dst.Host, "--cache-dir", w.cache, own)
	if r.code != 0 || !strings.Contains(r.stdout, "pulled from "+prefix+"/wso2is@"+base) {
		t.Errorf("plan with base.mirror: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestActionsOutputs: inside GitHub Actions, watch and build write the step outputs and
// the job summary themselves.
func TestActionsOutputs(t *testing.T) {
	reg, bk := needBuildkit(t)
	w := newWorld(t, reg)
	w.pushIS58()
	file := w.profile("is.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: latest}\n")
	dir := t.TempDir()
	output, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	t.Setenv("GITHUB_ACTIONS", "true")
	t.Setenv("GITHUB_OUTPUT", output)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	target := w.prefix + "/out"

	w.watch(t, target, file)
	outs := readOutputs(t, output)
	if outs["due"] != `["`+file+`"]` {
		t.Errorf("watch output due = %q, want the profile's file", outs["due"])
	}
	os.Remove(output)
	r, res := w.build(t, bk, target, file)
	if r.code != 0 {
		t.Fatalf("build exit %d:\n%s", r.code, r.stderr)
	}
	outs = readOutputs(t, output)
	if outs["digest"] != res[0].Digest || outs["digests"] != target+"/wso2is@"+res[0].Digest {
		t.Errorf("build outputs %v, want digest %s", outs, res[0].Digest)
	}
	if outs["tags"] != target+"/wso2is:5.8.0.1565855673150-alpine3.10\n"+target+"/wso2is:5.8.0-alpine3.10" {
		t.Errorf("build output tags = %q", outs["tags"])
	}
	var js []buildResult
	if err := json.Unmarshal([]byte(outs["json"]), &js); err != nil || js[0].Digest != res[0].Digest {
		t.Errorf("build output json = %q (%v)", outs["json"], err)
	}
	md, _ := os.ReadFile(summary)
	for _, want := range []string{"### wso2img watch: 1 of 1 due", "### wso2img build", "| is |", res[0].Digest} {
		if !strings.Contains(string(md), want) {
			t.Errorf("job summary lacks %q:\n%s", want, md)
		}
	}
}

// readOutputs parses $GITHUB_OUTPUT as the runner does.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		out[name] = strings.Join(val, "\n")
	}
	return out
}

// TestLatestOnFloatingBase: a profile that names a floating base tag and follows the
// latest update gets the update whose unique tag names the same digest.
func TestLatestOnFloatingBase(t *testing.T) {
	w := newWorld(t, needRegistry(t))
	is58 := func(created int64) standin.Options {
		return standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(created)}
	}
	first := w.pushBase(is58(wum1), []string{"wso2is:5.8.0.1565855673150-alpine3.10", "wso2is:5.8.0-alpine3.10"})
	w.pushBase(is58(wum2), []string{"wso2is:5.8.0.1567933846116-alpine3.10"}) // newer, but not behind the floating tag
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nbase: {image: docker.wso2.com/wso2is:5.8.0-alpine3.10}\nupdate: {wum: latest}\n")
	plan := func() (string, string) {
		r := runCLI(t, append([]string{"plan", "--json"}, append(w.flags(), file)...)...)
		if r.code != 0 {
			t.Fatalf("plan exit %d:\n%s", r.code, r.stderr)
		}
		var p []struct {
			Tags []struct{ Tag string }
			Base struct{ Digest string }
		}
		if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
			t.Fatal(err)
		}
		return p[0].Tags[0].Tag, p[0].Base.Digest
	}
	if tag, digest := plan(); tag != "5.8.0.1565855673150-alpine3.10" || digest != first {
		t.Errorf("floating tag on the first update: %s %s", tag, digest)
	}
	second := w.pushBase(is58(wum2), []string{"wso2is:5.8.0-alpine3.10"})
	if tag, digest := plan(); tag != "5.8.0.1567933846116-alpine3.10" || digest != second {
		t.Errorf("floating tag moved to the second update: %s %s", tag, digest)
	}
	// A floating tag that names no update of the scheme cannot be built as "latest".
	other := is58(wum2)
	other.Labels = map[string]string{"rebuilt": "yes"}
	w.pushBase(other, []string{"wso2is:5.8.0-alpine3.10"})
	r := runCLI(t, append([]string{"plan"}, append(w.flags(), file)...)...)
	if r.code == 0 || !strings.Contains(r.stderr, "its update is unknown") {
		t.Errorf("floating tag on an unknown update: exit %d\n%s", r.code, r.stderr)
	}
}
