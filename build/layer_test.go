package build_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/build/inputs"
	"github.com/wso2img/wso2img/profiles"
)

const baseDigest = "sha256:2bbcc5338a29f68eae11b8251ac3c4c06a211e7fc9a747a73175db498445e5b3"

// testPlan is a plan as the planner would make it, without a registry: a jar from the
// download cache, a config file with its own mode, and a directory.
func testPlan(t testing.TB) *build.Plan {
	t.Helper()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache", "blobs", "sha256")
	must(t, os.MkdirAll(cache, 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "conf", "extra"), 0o755))
	jar := filepath.Join(cache, strings.Repeat("a", 64))
	must(t, os.WriteFile(jar, []byte("jar"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "conf", "deployment.toml"), []byte("x"), 0o644))
	file := filepath.Join(dir, "p.yaml")
	must(t, os.WriteFile(file, []byte("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n"+
		"  - {url: https://repo.example/lib/driver.jar, sha256: \""+strings.Repeat("a", 64)+"\", dest: repository/components/lib/}\n"+
		"  - {path: conf/deployment.toml, dest: repository/conf/deployment.toml, mode: \"0640\"}\n"+
		"  - {path: conf/extra, dest: repository/conf/extra}\n"), 0o644))
	prof, err := profiles.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	created := prof.Tag().Time()
	home := "/home/wso2carbon/wso2is-5.8.0"
	return &build.Plan{
		Profile:    prof,
		Repository: "registry.example.com/acme/wso2is",
		Tags:       prof.Tags(),
		Base: build.Base{Ref: prof.BaseRef(), Digest: baseDigest,
			Pull: "127.0.0.1:5000/wso2is@" + baseDigest, Platforms: []string{"linux/amd64"}},
		Home: home, UID: 802, GID: 802, Ports: []int{4000, 9443, 9763}, Platforms: []string{"linux/amd64"},
		Created: created,
		Inputs: []build.Input{
			{Verified: &inputs.Verified{Local: jar}, Dest: home + "/repository/components/lib/driver.jar", Mode: 0o644},
			{Verified: &inputs.Verified{Local: filepath.Join(dir, "conf", "deployment.toml")}, Dest: home + "/repository/conf/deployment.toml", Mode: 0o640},
			{Verified: &inputs.Verified{Local: filepath.Join(dir, "conf", "extra"), Dir: true}, Dest: home + "/repository/conf/extra", Dir: true},
		},
		Env:    map[string]string{"JAVA_OPTS": "-Xmx1g", "WSO2_SERVER_HOME": home},
		Labels: map[string]string{"team": "platform", "org.opencontainers.image.title": "Acme IS"},
		Configs: map[string]*v1.ConfigFile{"linux/amd64": {
			Architecture: "amd64", OS: "linux",
			Config: v1.Config{
				User: "wso2carbon", Entrypoint: []string{"/home/wso2carbon/docker-entrypoint.sh"}, WorkingDir: "/home/wso2carbon",
				Env:          []string{"PATH=/usr/bin:/bin", "WSO2_SERVER_HOME=" + home},
				ExposedPorts: map[string]struct{}{"4000/tcp": {}, "9443/tcp": {}, "9763/tcp": {}, "8080/tcp": {}},
				Labels:       map[string]string{"org.opencontainers.image.vendor": "WSO2", "org.opencontainers.image.created": "2019-01-01", "maintainer": "WSO2"},
			},
			History: []v1.History{{CreatedBy: "base layer 1"}, {CreatedBy: "base layer 2"}},
			RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}, {Algorithm: "sha256", Hex: strings.Repeat("2", 64)}}},
		}},
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// graph is a marshalled LLB definition, indexed by digest.
type graph struct {
	ops  map[string]*pb.Op
	root *pb.Op
}

func marshal(t *testing.T, st llb.State) (*llb.Definition, graph) {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	g := graph{ops: map[string]*pb.Op{}}
	var last *pb.Op
	for _, dt := range def.Def {
		var op pb.Op
		if err := op.Unmarshal(dt); err != nil {
			t.Fatal(err)
		}
		g.ops[digestOf(dt)] = &op
		last = &op
	}
	// The last op of a definition is the empty one pointing at the result.
	g.root = g.ops[last.Inputs[0].Digest]
	return def, g
}

func TestLayerShape(t *testing.T) {
	plan := testPlan(t)
	layer := build.NewLayer(plan)
	def, g := marshal(t, layer.Image(plan, "linux/amd64"))

	// The root merges exactly two things: the untouched base, and one FileOp on scratch.
	merge := g.root.GetMerge()
	if merge == nil || len(g.root.Inputs) != 2 {
		t.Fatalf("root op = %v, want a merge of two inputs", g.root)
	}
	base := g.ops[g.root.Inputs[0].Digest].GetSource()
	if base == nil || base.Identifier != "docker-image://127.0.0.1:5000/wso2is@"+baseDigest {
		t.Errorf("first merge input = %v, want the base image by digest", base)
	}
	// The layer: a FileOp that copies the staged tree with every timestamp at the
	// update's time, over the FileOp that stages it.
	stamp := g.ops[g.root.Inputs[1].Digest]
	if cp := stamp.GetFile().GetActions(); len(cp) != 1 || cp[0].GetCopy() == nil || cp[0].GetCopy().Timestamp != plan.Created.UnixNano() {
		t.Fatalf("second merge input = %v, want one copy stamping the update's time", stamp)
	}
	fileOp := g.ops[stamp.Inputs[0].Digest]
	file := fileOp.GetFile()
	if file == nil {
		t.Fatalf("staging op = %v, want a FileOp", fileOp)
	}
	for _, op := range g.ops {
		if op.GetExec() != nil {
			t.Errorf("the build runs a process (%v): it must only add files", op.GetExec().Meta.Args)
		}
	}

	// Directories first, parents before children; /home stays root's, the user's home
	// and everything under the product home are the product user's.
	type dir struct {
		path     string
		uid, gid uint32
	}
	wantDirs := []dir{
		{"/home", 0, 0},
		{"/home/wso2carbon", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0/repository", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0/repository/components", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0/repository/conf", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0/repository/components/lib", 802, 802},
		{"/home/wso2carbon/wso2is-5.8.0/repository/conf/extra", 802, 802},
	}
	var gotDirs []dir
	var copies []*pb.FileActionCopy
	epoch := plan.Created.UnixNano()
	for _, a := range file.Actions {
		if mk := a.GetMkdir(); mk != nil {
			if mk.Mode != 0o755 || mk.MakeParents || mk.Timestamp != epoch {
				t.Errorf("mkdir %s: mode %o, parents %v, time %d", mk.Path, mk.Mode, mk.MakeParents, mk.Timestamp)
			}
			gotDirs = append(gotDirs, dir{mk.Path, mk.Owner.User.GetByID(), mk.Owner.Group.GetByID()})
		}
		if cp := a.GetCopy(); cp != nil {
			copies = append(copies, cp)
		}
	}
	if len(gotDirs) != len(wantDirs) {
		t.Fatalf("mkdirs = %v, want %v", gotDirs, wantDirs)
	}
	for i := range wantDirs {
		if gotDirs[i] != wantDirs[i] {
			t.Errorf("mkdir %d = %+v, want %+v", i, gotDirs[i], wantDirs[i])
		}
	}

	if len(copies) != 3 {
		t.Fatalf("%d copies, want 3", len(copies))
	}
	for _, c := range copies {
		if c.Owner.User.GetByID() != 802 || c.Owner.Group.GetByID() != 802 {
			t.Errorf("copy to %s owned by %v, want 802:802", c.Dest, c.Owner)
		}
		if c.Timestamp != epoch {
			t.Errorf("copy to %s has time %d, want the update's time %d", c.Dest, c.Timestamp, epoch)
		}
	}
	if c := copies[0]; c.Src != "/"+strings.Repeat("a", 64) || c.Dest != plan.Inputs[0].Dest || c.Mode != 0o644 {
		t.Errorf("jar copy = %s → %s mode %o", c.Src, c.Dest, c.Mode)
	}
	if c := copies[1]; c.Mode != 0o640 || !strings.HasSuffix(c.Dest, "deployment.toml") {
		t.Errorf("config copy = %s mode %o, want 0640", c.Dest, c.Mode)
	}
	if c := copies[2]; !c.DirCopyContents || c.ModeStr != "ug-s,-t" {
		t.Errorf("directory copy = contents %v, mode %q: want its contents, setuid/setgid/sticky cleared", c.DirCopyContents, c.ModeStr)
	}

	// Inputs come from local sources limited to what the build needs.
	locals := map[string]*pb.SourceOp{}
	for _, op := range g.ops {
		if s := op.GetSource(); s != nil && strings.HasPrefix(s.Identifier, "local://") {
			locals[strings.TrimPrefix(s.Identifier, "local://")] = s
		}
	}
	if len(locals) != 3 || len(layer.Locals) != 3 {
		t.Fatalf("local sources %v (mounts %v), want 3: the cache folder, the conf folder, the directory", locals, layer.Locals)
	}
	var jars *pb.SourceOp
	for name, src := range locals {
		if strings.Contains(src.Attrs[pb.AttrIncludePatterns], strings.Repeat("a", 64)) {
			if !strings.HasPrefix(name, "files-") {
				t.Errorf("the jar's folder is served as %q", name)
			}
			jars = src
		}
	}
	if jars == nil || strings.Contains(jars.Attrs[pb.AttrIncludePatterns], "deployment.toml") {
		t.Errorf("no local source includes only the jar's blob: %v", locals)
	}

	// The same plan gives the same graph, byte for byte.
	def2, _ := marshal(t, build.NewLayer(plan).Image(plan, "linux/amd64"))
	if len(def.Def) != len(def2.Def) {
		t.Fatal("two marshals differ in size")
	}
	for i := range def.Def {
		if string(def.Def[i]) != string(def2.Def[i]) {
			t.Fatalf("op %d differs between two marshals of the same plan", i)
		}
	}
}

func TestLayerWithoutInputs(t *testing.T) {
	plan := testPlan(t)
	plan.Inputs = nil
	_, g := marshal(t, build.NewLayer(plan).State)
	var mkdirs []string
	staged := g.ops[g.root.Inputs[0].Digest]
	for _, a := range staged.GetFile().GetActions() {
		if mk := a.GetMkdir(); mk != nil {
			mkdirs = append(mkdirs, mk.Path)
		}
	}
	if !slices.Equal(mkdirs, []string{"/home", "/home/wso2carbon", plan.Home}) {
		t.Errorf("a profile without inputs makes %v, want only the product home and its parents", mkdirs)
	}
}

func TestImageConfig(t *testing.T) {
	plan := testPlan(t)
	cf, err := build.ImageConfig(plan, "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "802:802" {
		t.Errorf("user = %q, want the numeric non-root user", cf.Config.User)
	}
	if len(cf.Config.ExposedPorts) != 3 {
		t.Errorf("ports = %v, want exactly the profile's (8080 from the base dropped)", cf.Config.ExposedPorts)
	}
	for _, p := range []string{"4000/tcp", "9443/tcp", "9763/tcp"} {
		if _, ok := cf.Config.ExposedPorts[p]; !ok {
			t.Errorf("port %s missing", p)
		}
	}
	wantEnv := []string{"PATH=/usr/bin:/bin", "WSO2_SERVER_HOME=/home/wso2carbon/wso2is-5.8.0", "JAVA_OPTS=-Xmx1g"}
	if strings.Join(cf.Config.Env, " ") != strings.Join(wantEnv, " ") {
		t.Errorf("env = %v, want %v", cf.Config.Env, wantEnv)
	}
	if cf.Config.Entrypoint[0] != "/home/wso2carbon/docker-entrypoint.sh" || cf.Config.WorkingDir != "/home/wso2carbon" {
		t.Errorf("entrypoint/workdir not kept: %v %q", cf.Config.Entrypoint, cf.Config.WorkingDir)
	}
	l := cf.Config.Labels
	if _, ok := l["org.opencontainers.image.vendor"]; ok {
		t.Errorf("the vendor's org.opencontainers.image.vendor label describes our image: %v", l)
	}
	for k, want := range map[string]string{
		"maintainer":                           "WSO2",
		"team":                                 "platform",
		"org.opencontainers.image.title":       "Acme IS",
		"org.opencontainers.image.created":     "2019-08-15T07:54:33Z",
		"org.opencontainers.image.base.name":   "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10",
		"org.opencontainers.image.base.digest": baseDigest,
		"org.opencontainers.image.version":     "5.8.0.1565855673150-alpine3.10",
		"io.wso2img.product":                   "wso2is",
		"io.wso2img.product-version":           "5.8.0",
		"io.wso2img.wum-timestamp":             "1565855673150",
		"io.wso2img.profile":                   "p",
		"io.wso2img.profile-digest":            plan.Profile.Digest(),
	} {
		if l[k] != want {
			t.Errorf("label %s = %q, want %q", k, l[k], want)
		}
	}
	if len(cf.History) != 3 || cf.History[2].Comment != "wso2img" || !cf.History[2].Created.Time.Equal(plan.Created) {
		t.Errorf("history = %+v, want the base's two entries and ours", cf.History)
	}
	if !cf.Created.Time.Equal(time.UnixMilli(1565855673150)) {
		t.Errorf("created = %v", cf.Created)
	}
	// The base config is not changed in place.
	if plan.Configs["linux/amd64"].Config.User != "wso2carbon" || len(plan.Configs["linux/amd64"].History) != 2 {
		t.Error("ImageConfig modified the base config")
	}
}

func TestParseOutput(t *testing.T) {
	for in, want := range map[string]string{"": "registry", "registry": "registry", "oci:out": "oci", "tar:x.tar": "tar"} {
		o, err := build.ParseOutput(in)
		if err != nil || o.Kind != want {
			t.Errorf("ParseOutput(%q) = %+v, %v", in, o, err)
		}
	}
	for _, bad := range []string{"oci", "tar:", "docker:x", "local:x"} {
		if _, err := build.ParseOutput(bad); err == nil {
			t.Errorf("ParseOutput(%q) succeeded", bad)
		}
	}
}

func digestOf(dt []byte) string {
	return digest.FromBytes(dt).String()
}
