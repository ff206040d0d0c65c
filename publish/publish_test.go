package publish_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// env is an in-process registry holding a stand-in base, and what publishing to it needs.
type env struct {
	t    *testing.T
	host string
	// target is the registry profiles push to; default host.
	target string
	reg    registry.Options
	dir    string
	// hook, when set, runs after the registry served each request.
	mu   sync.Mutex
	hook func(r *http.Request)
}

// newEnv starts the registry; it answers 403 to the requests deny matches.
func newEnv(t *testing.T, deny ...func(r *http.Request) bool) *env {
	e := &env{t: t, dir: t.TempDir()}
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, d := range deny {
			if d(r) {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"denied by the test"}]}`, http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r)
		e.mu.Lock()
		hook := e.hook
		e.mu.Unlock()
		if hook != nil {
			hook(r)
		}
	}))
	t.Cleanup(srv.Close)
	e.host = strings.TrimPrefix(srv.URL, "http://")
	e.reg = registry.Options{Insecure: []string{e.host}}
	// The base: two random layers, the product home in its environment.
	base, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0"}
	base, err = mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"5.8.0.1565855673150", "5.8.0.1567933846116"} {
		e.write(e.host+"/wso2is:"+tag, base)
	}
	return e
}

func (e *env) setHook(h func(r *http.Request)) {
	e.mu.Lock()
	e.hook = h
	e.mu.Unlock()
}

func (e *env) write(ref string, img v1.Image) {
	e.t.Helper()
	r, err := e.reg.ParseReference(ref)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := remote.Write(r, img, e.reg.Remote(context.Background())...); err != nil {
		e.t.Fatal(err)
	}
}

// digest is what a reference names now ("" when absent).
func (e *env) digest(ref string) string {
	e.t.Helper()
	r, err := e.reg.ParseReference(ref)
	if err != nil {
		e.t.Fatal(err)
	}
	d, err := e.reg.Digest(context.Background(), r)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// profile writes a profile of the stand-in base at a WUM update, with a label that
// varies its content, and loads it.
func (e *env) profile(name string, wum int64, release int, label string) *profiles.Profile {
	e.t.Helper()
	yaml := fmt.Sprintf(`name: %s
product: wso2is
version: 5.8.0
update: {wum: %d}
release: %d
base: {image: %s/wso2is}
target: {repository: %s/acme/wso2is}
user: {uid: 802, gid: 802}
labels: {variant: %q}
`, name, wum, release, e.host, cmpOr(e.target, e.host), label)
	p, err := profiles.Parse(filepath.Join(e.dir, name+".yaml"), []byte(yaml))
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// fakeBuilder stands in for BuildKit in unit tests: the image is the base with one
// layer made from the plan's content and the config build.ImageConfig gives, pushed by
// digest. The same plan gives the same digest.
type fakeBuilder struct {
	reg registry.Options
	// afterPush, when set, runs once the image is pushed (a racing writer).
	afterPush func(plan *build.Plan, digest string)
	pushes    int
	mu        sync.Mutex
}

func (b *fakeBuilder) image(ctx context.Context, plan *build.Plan) (v1.Image, error) {
	ref, err := b.reg.ParseReference(plan.Base.Pull)
	if err != nil {
		return nil, err
	}
	base, err := remote.Image(ref, b.reg.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	layer := static.NewLayer(tarOf("home/wso2carbon/wso2is-5.8.0/added", "layer of "+plan.RebuildID), types.OCIUncompressedLayer)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := build.ImageConfig(plan, plan.Platforms[0])
	if err != nil {
		return nil, err
	}
	have, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf.RootFS = have.RootFS
	cf.History = nil
	return mutate.ConfigFile(img, cf)
}

func (b *fakeBuilder) Push(ctx context.Context, plan *build.Plan) (*build.Pushed, error) {
	img, err := b.image(ctx, plan)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	ref, err := b.reg.NewDigest(plan.Repository + "@" + d.String())
	if err != nil {
		return nil, err
	}
	if err := remote.Write(ref, img, b.reg.Remote(ctx)...); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.pushes++
	b.mu.Unlock()
	if b.afterPush != nil {
		b.afterPush(plan, d.String())
	}
	return &build.Pushed{Digest: d.String(), Builder: "fake"}, nil
}

func (b *fakeBuilder) Digest(ctx context.Context, plan *build.Plan) (string, error) {
	img, err := b.image(ctx, plan)
	if err != nil {
		return "", err
	}
	d, err := img.Digest()
	return d.String(), err
}

func (b *fakeBuilder) Export(context.Context, *build.Plan, build.Output) (string, error) {
	return "", errors.New("the fake builder writes no local output")
}

// run publishes the profiles with a signer made from key (none when "").
func (e *env) run(b *fakeBuilder, key string, profs ...*profiles.Profile) ([]*publish.Result, error) {
	e.t.Helper()
	planner, err := build.NewPlanner(build.Options{Registry: e.reg, Inputs: inputsOptions(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	opts := publish.Options{Registry: e.reg, Planner: planner, Builder: b}
	if key != "" {
		s, err := sign.New(context.Background(), sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: e.reg})
		if err != nil {
			e.t.Fatal(err)
		}
		opts.Signer = s
	}
	p, err := publish.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Run(context.Background(), profs)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func stage(r *publish.Result, name string) publish.Record {
	for _, s := range r.Stages {
		if s.Stage == name {
			return s
		}
	}
	return publish.Record{}
}

// verifiedBy reports whether ref carries a signature and the attestations that verify
// with the public key pub.
func (e *env) verifiedBy(ref, pub string) bool {
	e.t.Helper()
	v, err := verify.New(context.Background(), verify.Options{Registry: e.reg, Signature: verify.SignatureOptions{Key: pub, IgnoreTlog: true}})
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := v.Verify(context.Background(), ref)
	if rep == nil {
		e.t.Fatalf("verifying %s: %v", ref, err)
	}
	for _, c := range rep.Checks {
		if (c.ID == verify.CheckSignature || c.ID == verify.CheckAttestations) && c.Status != verify.Pass {
			return false
		}
	}
	return true
}

// TestStagesInOrder: a first publish pushes, signs, attests and tags, in that order,
// and says so in its records; the same image again is kept at every stage.
func TestStagesInOrder(t *testing.T) {
	e := newEnv(t)
	key, pub := signtest.Keys(t)
	b := &fakeBuilder{reg: e.reg}
	prof := e.profile("is", 1565855673150, 0, "a")
	res, err := e.run(b, key, prof)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	var order []string
	for _, s := range r.Stages {
		order = append(order, s.Stage+"="+string(s.Status))
	}
	if got := strings.Join(order, " "); got != "base=off push=done scan=off sign=done attest=done tag=done" {
		t.Errorf("stages %s", got)
	}
	if !r.Pushed || !r.Signed || r.LayersAdded != 1 || r.BytesAdded <= 0 || !slices.Equal(r.Tags, []string{"5.8.0.1565855673150", "5.8.0"}) {
		t.Errorf("result %+v", r)
	}
	repo := e.host + "/acme/wso2is"
	if e.digest(repo+":5.8.0.1565855673150") != r.Digest || e.digest(repo+":5.8.0") != r.Digest {
		t.Error("the tags do not name the image")
	}
	if !e.verifiedBy(repo+"@"+r.Digest, pub) {
		t.Error("signature or attestations do not verify")
	}

	res, err = e.run(b, key, prof)
	if err != nil {
		t.Fatal(err)
	}
	r2 := res[0]
	for _, s := range []string{"push", "sign", "attest", "tag"} {
		if got := stage(r2, s).Status; got != publish.Kept {
			t.Errorf("second run: %s %s, want kept (%s)", s, got, stage(r2, s).Detail)
		}
	}
	if r2.Pushed || !r2.Signed || r2.Digest != r.Digest || b.pushes != 1 {
		t.Errorf("second run %+v, %d pushes", r2, b.pushes)
	}
}

// TestKeyRotation: the identical image rebuilt with a new key is signed and attested
// with the new key; a signature by the old key does not count as "signed already".
func TestKeyRotation(t *testing.T) {
	e := newEnv(t)
	oldKey, oldPub := signtest.Keys(t)
	newKey, newPub := signtest.Keys(t)
	b := &fakeBuilder{reg: e.reg}
	prof := e.profile("is", 1565855673150, 0, "a")
	first, err := e.run(b, oldKey, prof)
	if err != nil {
		t.Fatal(err)
	}
	ref := e.host + "/acme/wso2is@" + first[0].Digest
	if e.verifiedBy(ref, newPub) {
		t.Fatal("the new key verifies before it signed anything: the check cannot fail")
	}
	res, err := e.run(b, newKey, prof)
	if err != nil {
		t.Fatal(err)
	}
	r := res[0]
	if stage(r, "push").Status != publish.Kept || stage(r, "sign").Status != publish.Done || stage(r, "attest").Status != publish.Done || !r.Signed {
		t.Errorf("rebuild with a new key: %+v", r.Stages)
	}
	if !e.verifiedBy(ref, newPub) {
		t.Error("the image is not signed and attested by the new key")
	}
	if !e.verifiedBy(ref, oldPub) {
		t.Error("the old key's signature was dropped")
	}
}

// TestFloatingTagsOnlyForward: building an older update after a newer one leaves the
// floating tag on the newer image, and says so; a newer one moves it.
func TestFloatingTagsOnlyForward(t *testing.T) {
	e := newEnv(t)
	b := &fakeBuilder{reg: e.reg}
	repo := e.host + "/acme/wso2is"
	newer, err := e.run(b, "", e.profile("is", 1567933846116, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	older, err := e.run(b, "", e.profile("is", 1565855673150, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.digest(repo + ":5.8.0"); got != newer[0].Digest {
		t.Errorf("floating tag 5.8.0 moved back to the older update's image %s", got)
	}
	if !slices.Equal(older[0].Tags, []string{"5.8.0.1565855673150"}) || len(older[0].Notes) != 1 ||
		!strings.Contains(older[0].Notes[0], "5.8.0.1567933846116") || !strings.Contains(older[0].Notes[0], "left on") {
		t.Errorf("older build: tags %v, notes %q", older[0].Tags, older[0].Notes)
	}
	// A new release of the newest update is at least as new: the tag moves to it.
	rel, err := e.run(b, "", e.profile("is", 1567933846116, 1, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.digest(repo + ":5.8.0"); got != rel[0].Digest || len(rel[0].Notes) != 0 {
		t.Errorf("floating tag names %s, want the new release %s (notes %q)", got, rel[0].Digest, rel[0].Notes)
	}
	// An image not built by wso2img says nothing about its update: the tag moves.
	foreign, _ := random.Image(64, 1)
	e.write(repo+":5.8.0", foreign)
	again, err := e.run(b, "", e.profile("is", 1565855673150, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.digest(repo + ":5.8.0"); got != again[0].Digest {
		t.Errorf("floating tag stayed on a foreign image: %s", got)
	}
}

// TestSameUniqueTagRefused: two profiles of one run that would publish the same unique
// tag are both refused before anything is pushed; others go on.
func TestSameUniqueTagRefused(t *testing.T) {
	e := newEnv(t)
	b := &fakeBuilder{reg: e.reg}
	other := e.profile("other", 1567933846116, 0, "c")
	res, err := e.run(b, "", e.profile("one", 1565855673150, 0, "a"), e.profile("two", 1565855673150, 0, "b"), other)
	var conflict *publish.ConflictError
	if !errors.As(err, &conflict) || !strings.Contains(err.Error(), `"two"`) || !strings.Contains(err.Error(), `"one"`) {
		t.Fatalf("error %v, want a conflict naming both profiles", err)
	}
	if res[0] != nil || res[1] != nil || res[2] == nil || b.pushes != 1 {
		t.Errorf("results %v, %d pushes: only the third profile should be published", res, b.pushes)
	}
	if e.digest(e.host+"/acme/wso2is:5.8.0.1565855673150") != "" {
		t.Error("the contested tag was written")
	}
}

// TestUniqueTagRace: a writer that tags the unique tag between wso2img's push and its
// tag stage, or right as wso2img writes it, wins; wso2img fails and says so.
func TestUniqueTagRace(t *testing.T) {
	e := newEnv(t)
	repo := e.host + "/acme/wso2is"
	theirs, _ := random.Image(64, 1)
	theirsDigest, _ := theirs.Digest()

	// Before the tag stage: refused as a unique tag that would move.
	b := &fakeBuilder{reg: e.reg, afterPush: func(*build.Plan, string) { e.write(repo+":5.8.0.1565855673150", theirs) }}
	_, err := e.run(b, "", e.profile("is", 1565855673150, 0, "a"))
	var ute *publish.UniqueTagError
	if !errors.As(err, &ute) || e.digest(repo+":5.8.0.1565855673150") != theirsDigest.String() {
		t.Fatalf("error %v, want a unique tag error and their image kept", err)
	}

	// While it writes: the tag read back names another image.
	var once sync.Once
	e.setHook(func(r *http.Request) {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/5.8.0.1567933846116") {
			once.Do(func() { go e.write(repo+":5.8.0.1567933846116", theirs) })
			time.Sleep(200 * time.Millisecond) // let the other writer land first
		}
	})
	res, err := e.run(&fakeBuilder{reg: e.reg}, "", e.profile("is", 1567933846116, 0, "a"))
	var race *publish.RaceError
	if !errors.As(err, &race) || !strings.Contains(err.Error(), "won the race") {
		t.Fatalf("error %v, want a race error", err)
	}
	if stage(res[0], "tag").Status != publish.Failed || slices.Contains(res[0].Tags, "5.8.0") {
		t.Errorf("result %+v", res[0])
	}
}

// TestSignFailureLeavesNoTag: when a stage after the push fails, the image is there by
// digest only.
func TestSignFailureLeavesNoTag(t *testing.T) {
	key, _ := signtest.Keys(t)
	e := newEnv(t, func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, ".sig")
	})
	res, err := e.run(&fakeBuilder{reg: e.reg}, key, e.profile("is", 1565855673150, 0, "a"))
	var se *publish.StageError
	if !errors.As(err, &se) || se.Stage != "sign" || !strings.Contains(err.Error(), "was pushed but not tagged") {
		t.Fatalf("error %v", err)
	}
	r := res[0]
	// Attesting runs beside signing; tagging waits for both.
	if !r.Pushed || r.Signed || len(r.Tags) != 0 || stage(r, "tag").Status != publish.NotRun || stage(r, "sign").Status != publish.Failed {
		t.Errorf("result %+v", r)
	}
	if e.digest(e.host+"/acme/wso2is:5.8.0.1565855673150") != "" {
		t.Error("a tag names the unsigned image")
	}
	ref, _ := name.NewDigest(e.host+"/acme/wso2is@"+r.Digest, name.Insecure)
	if _, err := remote.Head(ref); err != nil {
		t.Errorf("the image is not there by digest: %v", err)
	}
}

func inputsOptions(t *testing.T) inputs.Options {
	return inputs.Options{CacheDir: t.TempDir()}
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
