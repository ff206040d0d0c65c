package profiles_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

const full = `
extends: wso2is-5.8.0-alpine
update:
  wum: 1565855673150
release: 3
target:
  repository: registry.example.com/acme/wso2is
inputs:
  - url: https://repo1.maven.org/maven2/mysql/mysql-connector-java/8.0.17/mysql-connector-java-8.0.17.jar
    sha256: "ab5bd1b5ee3f02dbc1f0ab68b5c1be1bbbef2b25b4a27fd2f0b5ff5ba3ab6e4e"
    dest: repository/components/lib/
  - path: conf/deployment.toml
    dest: repository/conf/deployment.toml
    mode: "0640"
env: {JAVA_OPTS: "-Xmx1g"}
labels: {org.opencontainers.image.title: "Acme IS"}
`

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadExtendsStock(t *testing.T) {
	dir := t.TempDir()
	file := write(t, dir, "acme-is.yaml", full)
	p, err := profiles.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "acme-is" {
		t.Errorf("name = %q, want the file's name acme-is", p.Name)
	}
	// Inherited from the stock profile.
	if p.Product != "wso2is" || p.Version != "5.8.0" || p.OS != "alpine" || p.OSVersion != "3.10" {
		t.Errorf("inherited identity = %s %s %s %s", p.Product, p.Version, p.OS, p.OSVersion)
	}
	if p.User.UID != 802 || p.User.GID != 802 || p.Home != "/home/wso2carbon/wso2is-5.8.0" {
		t.Errorf("inherited user/home = %+v %s", p.User, p.Home)
	}
	if got := p.BaseRef(); got != "docker.wso2.com/wso2is:5.8.0.1565855673150-alpine3.10" {
		t.Errorf("BaseRef = %q", got)
	}
	wantTags := []tags.Published{{Tag: "5.8.0.1565855673150.3-alpine3.10", Unique: true}, {Tag: "5.8.0-alpine3.10"}}
	if got := p.Tags(); len(got) != 2 || got[0] != wantTags[0] || got[1] != wantTags[1] {
		t.Errorf("Tags = %v, want %v", got, wantTags)
	}
	if got := p.DestPath(0); got != "/home/wso2carbon/wso2is-5.8.0/repository/components/lib/mysql-connector-java-8.0.17.jar" {
		t.Errorf("DestPath(0) = %q", got)
	}
	if got := p.DestPath(1); got != "/home/wso2carbon/wso2is-5.8.0/repository/conf/deployment.toml" {
		t.Errorf("DestPath(1) = %q", got)
	}
	if got := p.Inputs[1].Path; got != filepath.Join(dir, "conf/deployment.toml") {
		t.Errorf("local path = %q, want it resolved against the profile's folder", got)
	}
	if p.Inputs[1].Root != dir {
		t.Errorf("input root = %q, want %q", p.Inputs[1].Root, dir)
	}
	if !reflectEqual(p.Ports, []int{4000, 9763, 9443}) {
		t.Errorf("ports = %v", p.Ports)
	}
	if p.Repository("") != "registry.example.com/acme/wso2is" || p.Repository("127.0.0.1:5000/demo/") != "127.0.0.1:5000/demo/wso2is" {
		t.Errorf("Repository = %q / %q", p.Repository(""), p.Repository("127.0.0.1:5000/demo/"))
	}
	if got := p.BuildPlatforms(); len(got) != 1 || got[0] != "linux/amd64" {
		t.Errorf("default platforms = %v", got)
	}
}

func TestOverlayMergesBlocks(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "parent.yaml", `
extends: wso2am-4.5.0
update: {level: 12}
env: {A: "1", B: "2"}
labels: {team: platform}
inputs:
  - path: files/parent.txt
    dest: parent.txt
`)
	file := write(t, dir, "sub/child.yaml", `
extends: ../parent.yaml
user: {gid: 20001}
base: {digest: "sha256:`+strings.Repeat("a", 64)+`"}
env: {B: "3", C: "4"}
update: {level: 13}
`)
	p, err := profiles.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if p.User.UID != 10001 || p.User.GID != 20001 {
		t.Errorf("user = %+v, want uid from stock and gid from child", p.User)
	}
	if p.Base.Image != "registry.wso2.com/wso2-apim/am" || p.Base.Digest == "" {
		t.Errorf("base = %+v, want image inherited and digest from child", p.Base)
	}
	if p.Update.Level != 13 {
		t.Errorf("update = %+v", p.Update)
	}
	want := map[string]string{"A": "1", "B": "3", "C": "4"}
	if !reflectEqual(p.Env, want) {
		t.Errorf("env = %v, want %v", p.Env, want)
	}
	if p.Labels["team"] != "platform" {
		t.Errorf("labels = %v", p.Labels)
	}
	// An inherited input keeps pointing where its own profile said, and stays confined there.
	if p.Inputs[0].Path != filepath.Join(dir, "files/parent.txt") || p.Inputs[0].Root != dir {
		t.Errorf("inherited input = %+v", p.Inputs[0])
	}
	if p.Name != "child" {
		t.Errorf("name = %q: a name is never inherited", p.Name)
	}
	if got := p.Tags()[0].Tag; got != "4.5.0.13" {
		t.Errorf("unique tag = %q", got)
	}
}

func TestProblems(t *testing.T) {
	const head = "extends: wso2is-7.1.0\nupdate: {level: 3}\n"
	for _, tc := range []struct {
		name, yaml string
		field      string // the field path the problem must name
		line       int    // 0: do not check
		msg        string
	}{
		{"unknown key", head + "prodcut: wso2is\n", "prodcut", 3, `unknown field "prodcut" (did you mean "product"?)`},
		{"unknown nested key", head + "inputs:\n  - url: https://x.example/a.jar\n    sha265: abc\n    dest: lib/\n", "inputs[0].sha265", 5, `did you mean "sha256"`},
		{"wrong type list", head + "ports: \"9443\"\n", "ports", 3, `expected a list, found the string "9443"`},
		{"wrong type number", head + "user: {uid: abc}\n", "user.uid", 3, `expected a whole number, found the string "abc"`},
		{"wrong type mapping", head + "base: registry.wso2.com/wso2-is/is\n", "base", 3, "expected a mapping of fields"},
		{"written twice", head + "release: 1\nrelease: 2\n", "release", 4, "written twice"},
		{"missing product", "version: 7.1.0\nupdate: {level: 3}\nbase: {image: x/y}\nuser: {uid: 1, gid: 1}\n", "product", 0, "required"},
		{"missing update", "extends: wso2is-7.1.0\n", "update", 0, "required: wum"},
		{"missing base", "product: wso2is\nversion: 7.1.0\nupdate: {level: 3}\nuser: {uid: 1, gid: 1}\n", "base.image", 0, "required"},
		{"both wum and level", "extends: wso2is-7.1.0\nupdate: {wum: 1565855673150, level: 3}\n", "update", 2, "not both"},
		{"level 0", "extends: wso2is-7.1.0\nupdate: {level: 0}\n", "update.level", 2, "floating"},
		{"short wum", "extends: wso2is-5.8.0\nupdate: {wum: 156585567315}\n", "update.wum", 2, "expected 13 digits"},
		{"uid 0", head + "user: {uid: 0}\n", "user.uid", 3, "0 is root"},
		{"gid 0", head + "user: {gid: 0}\n", "user.gid", 3, "0 is root"},
		{"url without checksum", head + "inputs:\n  - url: https://x.example/a.jar\n    dest: lib/\n  - url: https://x.example/b.jar\n    dest: lib/\n    sha256: \"" + strings.Repeat("b", 64) + "\"\n  - url: https://x.example/c.jar\n    dest: lib/\n", "inputs[2].sha256", 9, "needs a sha256"},
		{"bad checksum", head + "inputs:\n  - url: https://x.example/a.jar\n    dest: lib/\n    sha256: abc\n", "inputs[0].sha256", 6, "expected 64 hex digits"},
		{"dest escapes", head + "inputs:\n  - path: x.txt\n    dest: ../../../etc/passwd\n", "inputs[0].dest", 5, "escapes the product home"},
		{"dest absolute outside", head + "inputs:\n  - path: x.txt\n    dest: /etc/passwd\n", "inputs[0].dest", 5, "outside the product home /home/wso2carbon/wso2is-7.1.0"},
		{"dest absolute prefix trick", head + "inputs:\n  - path: x.txt\n    dest: /home/wso2carbon/wso2is-7.1.0-evil/x\n", "inputs[0].dest", 5, "outside the product home"},
		{"same dest", head + "inputs:\n  - path: a/x.jar\n    dest: lib/\n  - url: https://x.example/x.jar\n    sha256: \"" + strings.Repeat("c", 64) + "\"\n    dest: lib/x.jar\n", "inputs[1].dest", 8, "is also where inputs[0] goes"},
		{"port zero", head + "ports: [0]\n", "ports[0]", 3, "out of range"},
		{"port too big", head + "ports: [9443, 70000]\n", "ports[1]", 3, "70000 is out of range"},
		{"port twice", head + "ports: [9443, 9443]\n", "ports[1]", 3, "listed twice"},
		{"setuid mode", head + "inputs:\n  - path: x.sh\n    dest: bin/\n    mode: \"4755\"\n", "inputs[0].mode", 6, "setuid"},
		{"secret env", head + "env: {DB_PASSWORD: hunter2}\n", "env.DB_PASSWORD", 3, "looks like a secret"},
		{"reserved label", head + "labels: {io.wso2img.product: x}\n", "labels.io.wso2img.product", 3, "written by wso2img"},
		{"computed label", head + "labels: {org.opencontainers.image.base.digest: x}\n", "labels.org.opencontainers.image.base.digest", 3, "computed"},
		{"windows platform", head + "platforms: [windows/amd64]\n", "platforms[0]", 3, "linux images"},
		{"bad platform", head + "platforms: [linux/amd64, linux/amd64]\n", "platforms[1]", 3, "listed twice"},
		{"signature without keys", head + "inputs:\n  - url: https://x.example/a.jar\n    sha256: \"" + strings.Repeat("d", 64) + "\"\n    signature: https://x.example/a.jar.asc\n    dest: lib/\n", "inputs[0].signature", 6, "gpg.keyring"},
		{"bad fingerprint", head + "gpg: {keyring: k.asc, fingerprints: [ABCD]}\n", "gpg.fingerprints[0]", 3, "40 (v4) or 64 (v6) hex digits"},
		{"bad base digest", head + "base: {digest: sha256:abc}\n", "base.digest", 3, "not a digest"},
		{"target with tag", head + "target: {repository: registry.example.com/acme/is:1.0}\n", "target.repository", 3, "not a repository"},
		{"extends missing", "extends: nope\n", "extends", 1, "neither a stock profile"},
		{"bad yaml", "product: [wso2is\n", "", 0, "not valid YAML"},
		{"empty", "", "", 0, "empty"},
		{"os version without os", head + "osVersion: \"3.10\"\n", "osVersion", 3, "without os"},
		{"inherited home in message", "extends: wso2is-7.1.0\nupdate: {level: 3}\nuser: {uid: 0}\n", "user.gid", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := write(t, dir, "p.yaml", tc.yaml)
			_, err := profiles.Load(file)
			if tc.name == "inherited home in message" {
				// gid comes from the stock profile and is fine; only uid is wrong.
				if err == nil || strings.Contains(err.Error(), "user.gid") {
					t.Fatalf("Load = %v, want a problem with user.uid only", err)
				}
				return
			}
			var perr *profiles.Error
			if !errors.As(err, &perr) {
				t.Fatalf("Load = %v, want a *profiles.Error", err)
			}
			if perr.File != file {
				t.Errorf("error names file %q, want %q", perr.File, file)
			}
			var found *profiles.Problem
			for i, p := range perr.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.msg) {
					found = &perr.Problems[i]
				}
			}
			if found == nil {
				t.Fatalf("problems = %v, want one at %q mentioning %q", perr.Problems, tc.field, tc.msg)
			}
			if tc.line != 0 && found.Line != tc.line {
				t.Errorf("problem at line %d, want line %d", found.Line, tc.line)
			}
			if !strings.Contains(err.Error(), file) || (tc.field != "" && !strings.Contains(err.Error(), tc.field+": ")) {
				t.Errorf("message %q does not name the file and field", err)
			}
		})
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	file := write(t, t.TempDir(), "p.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\nuser: {uid: 0}\nports: [0]\nenv: {API_TOKEN: x}\n")
	_, err := profiles.Load(file)
	var perr *profiles.Error
	if !errors.As(err, &perr) || len(perr.Problems) != 3 {
		t.Fatalf("Load = %v, want three problems", err)
	}
	if !strings.Contains(err.Error(), "has 3 problems") {
		t.Errorf("message %q does not count the problems", err)
	}
}

func TestDirectoryInputs(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "conf/a.toml", "a")
	write(t, dir, "extra/b.toml", "b")
	good := write(t, dir, "good.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\ninputs:\n  - path: conf\n    dest: repository/conf/\n  - path: extra\n    dest: repository/conf\n")
	p, err := profiles.Load(good)
	if err != nil {
		t.Fatalf("two directories into one folder: %v", err)
	}
	if !p.Inputs[0].IsDir() || p.DestPath(0) != "/home/wso2carbon/wso2is-7.1.0/repository/conf" {
		t.Errorf("directory input dest = %q (dir %v)", p.DestPath(0), p.Inputs[0].IsDir())
	}
	bad := write(t, dir, "bad.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\ninputs:\n  - path: conf\n    dest: repository/conf/\n    sha256: \""+strings.Repeat("e", 64)+"\"\n    mode: \"0600\"\n")
	_, err = profiles.Load(bad)
	if err == nil || !strings.Contains(err.Error(), "inputs[0].sha256") || !strings.Contains(err.Error(), "inputs[0].mode") {
		t.Errorf("Load = %v, want sha256 and mode refused on a directory", err)
	}
}

func TestExtendsCycle(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.yaml", "extends: b.yaml\n")
	file := write(t, dir, "b.yaml", "extends: a.yaml\n")
	_, err := profiles.Load(file)
	if err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("Load = %v, want a cycle error", err)
	}
}

func TestLoadStockByName(t *testing.T) {
	_, err := profiles.Load("wso2is-7.1.0")
	if err == nil || !strings.Contains(err.Error(), "extends: wso2is-7.1.0") {
		t.Fatalf("Load(stock) = %v, want a hint to extend it", err)
	}
	_, err = profiles.Load("no-such-profile")
	if err == nil || !strings.Contains(err.Error(), "no stock profile") {
		t.Fatalf("Load(missing) = %v", err)
	}
}

// stockFacts are the researched facts of every stock profile (WSO2.md and the sources
// named in each profile's comment): a stock profile without an entry here fails the test.
var stockFacts = map[string]struct {
	product, image string
	uid            int
	home           string
	ports          []int
	os             string
	u2             bool
}{
	"wso2is-5.8.0":              {"wso2is", "docker.wso2.com/wso2is", 802, "/home/wso2carbon/wso2is-5.8.0", isPorts, "", false},
	"wso2is-5.8.0-alpine":       {"wso2is", "docker.wso2.com/wso2is", 802, "/home/wso2carbon/wso2is-5.8.0", isPorts, "alpine", false},
	"wso2is-7.0.0":              {"wso2is", "registry.wso2.com/wso2-is/is", 802, "/home/wso2carbon/wso2is-7.0.0", isPorts, "", true},
	"wso2is-7.1.0":              {"wso2is", "registry.wso2.com/wso2-is/is", 802, "/home/wso2carbon/wso2is-7.1.0", isPorts, "", true},
	"wso2is-7.2.0":              {"wso2is", "registry.wso2.com/wso2-is/is", 802, "/home/wso2carbon/wso2is-7.2.0", isPorts, "", true},
	"wso2is-7.3.0":              {"wso2is", "registry.wso2.com/wso2-is/is", 802, "/home/wso2carbon/wso2is-7.3.0", isPorts, "", true},
	"wso2am-4.2.0":              {"wso2am", "registry.wso2.com/wso2-apim/am", 802, "/home/wso2carbon/wso2am-4.2.0", amPorts, "", true},
	"wso2am-4.5.0":              {"wso2am", "registry.wso2.com/wso2-apim/am", 10001, "/home/wso2carbon/wso2am-4.5.0", amPorts, "", true},
	"wso2am-acp-4.5.0":          {"wso2am-acp", "registry.wso2.com/wso2-apim/am-acp", 10001, "/home/wso2carbon/wso2am-acp-4.5.0", cpPorts, "", true},
	"wso2am-tm-4.5.0":           {"wso2am-tm", "registry.wso2.com/wso2-apim/am-tm", 10001, "/home/wso2carbon/wso2am-tm-4.5.0", cpPorts, "", true},
	"wso2am-universal-gw-4.5.0": {"wso2am-universal-gw", "registry.wso2.com/wso2-apim/am-universal-gw", 10001, "/home/wso2carbon/wso2am-universal-gw-4.5.0", gwPorts, "", true},
	"wso2am-4.6.0":              {"wso2am", "registry.wso2.com/wso2-apim/am", 10001, "/home/wso2carbon/wso2am-4.6.0", amPorts, "", true},
	"wso2am-acp-4.6.0":          {"wso2am-acp", "registry.wso2.com/wso2-apim/am-acp", 10001, "/home/wso2carbon/wso2am-acp-4.6.0", cpPorts, "", true},
	"wso2am-tm-4.6.0":           {"wso2am-tm", "registry.wso2.com/wso2-apim/am-tm", 10001, "/home/wso2carbon/wso2am-tm-4.6.0", cpPorts, "", true},
	"wso2am-universal-gw-4.6.0": {"wso2am-universal-gw", "registry.wso2.com/wso2-apim/am-universal-gw", 10001, "/home/wso2carbon/wso2am-universal-gw-4.6.0", gwPorts, "", true},
	"wso2am-4.7.0":              {"wso2am", "registry.wso2.com/wso2-apim/am", 10001, "/home/wso2carbon/wso2am-4.7.0", amPorts, "", true},
	"wso2am-acp-4.7.0":          {"wso2am-acp", "registry.wso2.com/wso2-apim/am-acp", 10001, "/home/wso2carbon/wso2am-acp-4.7.0", cpPorts, "", true},
	"wso2am-tm-4.7.0":           {"wso2am-tm", "registry.wso2.com/wso2-apim/am-tm", 10001, "/home/wso2carbon/wso2am-tm-4.7.0", cpPorts, "", true},
	"wso2am-universal-gw-4.7.0": {"wso2am-universal-gw", "registry.wso2.com/wso2-apim/am-universal-gw", 10001, "/home/wso2carbon/wso2am-universal-gw-4.7.0", gwPorts, "", true},
	"wso2mi-4.4.0":              {"wso2mi", "registry.wso2.com/wso2-integrator/mi", 10802, "/home/wso2carbon/wso2mi-4.4.0", miPorts, "", true},
	"wso2mi-4.5.0":              {"wso2mi", "registry.wso2.com/wso2-integrator/mi", 10802, "/home/wso2carbon/wso2mi-4.5.0", miPorts, "", true},
	"wso2mi-4.6.0":              {"wso2mi", "registry.wso2.com/wso2-integrator/mi", 10802, "/home/wso2carbon/wso2mi-4.6.0", miPorts, "", true},
}

// The EXPOSE lines of WSO2's Dockerfiles (docker-is, docker-apim, docker-ei); the control
// plane and traffic manager list their own ports (see their stock profiles' comments).
var (
	isPorts = []int{4000, 9763, 9443}
	amPorts = []int{9763, 9443, 9999, 11111, 8280, 8243, 5672, 9711, 9611, 9099}
	cpPorts = []int{9763, 9443, 9711, 9611, 5672}
	gwPorts = []int{8280, 8243, 9763, 9443, 9099, 8099, 9021, 8021}
	miPorts = []int{8290, 8253}
)

func TestStockProfiles(t *testing.T) {
	stock := profiles.StockProfiles()
	if len(stock) != len(stockFacts) {
		t.Errorf("%d stock profiles, want %d", len(stock), len(stockFacts))
	}
	for _, s := range stock {
		t.Run(s.Name, func(t *testing.T) {
			w, ok := stockFacts[s.Name]
			if !ok {
				t.Fatalf("stock profile %s has no researched facts in this test", s.Name)
			}
			p := s.Profile
			if p.Product != w.product || p.Base.Image != w.image || p.User.UID != w.uid || p.User.GID != w.uid ||
				p.Home != w.home || !reflectEqual(p.Ports, w.ports) || p.OS != w.os {
				t.Errorf("%s = product %s base %s user %+v home %s ports %v os %q, want %+v", s.Name, p.Product, p.Base.Image, p.User, p.Home, p.Ports, p.OS, w)
			}
			// The stock profile's name is its product and version (and OS), and its home
			// is the product's pack folder: WSO2_SERVER_HOME of the official image.
			if want := p.Product + "-" + p.Version; !strings.HasPrefix(s.Name, want) || p.Home != "/home/wso2carbon/"+want {
				t.Errorf("%s: name or home does not follow %s (home %s)", s.Name, want, p.Home)
			}
			if p.Update != (profiles.Update{}) || p.Target.Repository != "" || len(p.Inputs) > 0 {
				t.Errorf("%s carries user choices (update %+v, target %q, %d inputs)", s.Name, p.Update, p.Target.Repository, len(p.Inputs))
			}
			yml, ok := profiles.StockYAML(s.Name)
			if !ok || !strings.HasPrefix(string(yml), "# ") || !strings.Contains(string(yml), "product: "+p.Product) {
				t.Errorf("StockYAML(%s) lacks its leading comment or product:\n%s", s.Name, yml)
			}

			// Each one extends into a valid profile with an update of its era, cleanly:
			// everything but the update is inherited.
			update, unique, floating := "update: {wum: 1565855673150}", p.Version+".1565855673150", p.Version
			if w.u2 {
				update, unique, floating = "update: {level: 7}", p.Version+".7", p.Version+".0"
			}
			if w.os != "" {
				unique, floating = unique+"-"+p.OS+p.OSVersion, floating+"-"+p.OS+p.OSVersion
			}
			file := write(t, t.TempDir(), "x.yaml", "extends: "+s.Name+"\n"+update+"\n")
			ext, err := profiles.Load(file)
			if err != nil {
				t.Fatalf("extending %s: %v", s.Name, err)
			}
			if ext.Product != p.Product || ext.Version != p.Version || ext.User != p.User || ext.Home != p.Home || !reflectEqual(ext.Ports, p.Ports) || ext.Name != "x" {
				t.Errorf("extended %s = %+v", s.Name, ext)
			}
			if got := ext.BaseRef(); got != w.image+":"+unique {
				t.Errorf("%s base ref = %s, want %s", s.Name, got, w.image+":"+unique)
			}
			if got := ext.Tags(); len(got) != 2 || got[0] != (tags.Published{Tag: unique, Unique: true}) || got[1] != (tags.Published{Tag: floating}) {
				t.Errorf("%s tags = %v, want %s (unique) and %s", s.Name, got, unique, floating)
			}
			if got := ext.Repository("registry.example.com/acme"); got != "registry.example.com/acme/"+p.Product {
				t.Errorf("%s under --registry = %s, want the product name as the repository", s.Name, got)
			}
		})
	}
}

func TestDigestIsContent(t *testing.T) {
	dir := t.TempDir()
	a, err := profiles.Load(write(t, dir, "a.yaml", full))
	if err != nil {
		t.Fatal(err)
	}
	b, err := profiles.Load(write(t, dir, "a2/a.yaml", strings.Replace(full, "release: 3\n", "release: 3 # a comment\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := profiles.Load(write(t, dir, "a3/a.yaml", strings.Replace(full, "release: 3\n", "release: 4\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	// Local paths are absolute, so a and b differ only by where they live; compare
	// what matters: a change of content changes the digest, a comment does not.
	b.Inputs[1].Path = a.Inputs[1].Path
	c.Inputs[1].Path = a.Inputs[1].Path
	if a.Digest() != b.Digest() {
		t.Errorf("a comment changed the digest")
	}
	if a.Digest() == c.Digest() {
		t.Errorf("a new release left the digest unchanged")
	}
}

func TestLooksSecret(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "ADMIN_PASSWD": true, "API_KEY": true, "GITHUB_TOKEN": true, "client_secret": true,
		"AWS_SECRET_ACCESS_KEY": true, "PRIVATE_KEY": true,
		"KEYSTORE_TYPE": false, "JAVA_OPTS": false, "PROFILE_NAME": false, "WSO2_SERVER_HOME": false, "TOKEN_ENDPOINT_URL": false, "KEYSTORE_PASSWORD_FILE": false, "SECRET_KEY_BASE": true, "PWD": false,
	} {
		if got := profiles.LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}

func reflectEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

func TestUpdateLatest(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		yaml, latest, err string
	}{
		{"extends: wso2is-5.8.0-alpine\nupdate: {wum: latest}\n", "wum", ""},
		{"extends: wso2mi-4.5.0\nupdate:\n  level: latest\n", "level", ""},
		{"extends: wso2mi-4.5.0\nupdate: {level: latest, wum: 1565855673150}\n", "", "not both"},
		{"extends: wso2mi-4.5.0\nupdate: {level: newest}\n", "", `update.level: expected a whole number, found the string "newest"`},
		{"extends: wso2mi-4.5.0\nupdate: {levle: latest}\n", "", `unknown field "levle"`},
		{"extends: wso2mi-4.5.0\nupdate: latest\n", "", "expected a mapping"},
	} {
		file := write(t, dir, "p.yaml", tc.yaml)
		p, err := profiles.Load(file)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: Load = %v, want an error mentioning %q", tc.yaml, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.yaml, err)
			continue
		}
		if !p.Update.Follows() || p.Update.Latest != tc.latest || p.Tags() != nil {
			t.Errorf("%q: update %+v, tags %v", tc.yaml, p.Update, p.Tags())
		}
		var r *profiles.Profile
		if tc.latest == "wum" {
			r = p.WithUpdate(profiles.Update{WUM: 1567933846116}, "5.8.0.1567933846116.2-alpine3.10")
			if got := r.Tags()[0].Tag; got != "5.8.0.1567933846116-alpine3.10" {
				t.Errorf("resolved unique tag %q", got)
			}
			if got := r.BaseRef(); got != "docker.wso2.com/wso2is:5.8.0.1567933846116.2-alpine3.10" {
				t.Errorf("resolved base %q", got)
			}
		} else {
			r = p.WithUpdate(profiles.Update{Level: 7}, "4.5.0.7")
			if got := r.Tags()[0].Tag; got != "4.5.0.7" {
				t.Errorf("resolved unique tag %q", got)
			}
		}
		if r.Update.Follows() || p.Tags() != nil {
			t.Errorf("WithUpdate changed the original or did not resolve: %+v %+v", p.Update, r.Update)
		}
	}
}

func TestBaseVerify(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, err string }{
		{"base: {verify: {key: keys/wso2.pub}}", ""},
		{"base: {verify: {key: env://WSO2_KEY}}", ""},
		{"base: {verify: {identity: https://github.com/wso2/docker-is/.github/workflows/release.yml@refs/heads/main, issuer: https://token.actions.githubusercontent.com}}", ""},
		{"base: {verify: {identityRegexp: '^https://github.com/wso2/', issuer: https://token.actions.githubusercontent.com}}", ""},
		{"base: {verify: {}}", "needs key"},
		{"base: {verify: {key: k.pub, issuer: x}}", "not both"},
		{"base: {verify: {identity: a, identityRegexp: b, issuer: x}}", "exactly one of identity"},
		{"base: {verify: {identity: a}}", "exactly one of issuer"},
		{"base: {verify: {kee: k.pub}}", `did you mean "key"`},
	} {
		file := write(t, dir, "p.yaml", "extends: wso2is-7.1.0\nupdate: {level: 3}\n"+tc.yaml+"\n")
		p, err := profiles.Load(file)
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.yaml, err)
			} else if p.Base.Image != "registry.wso2.com/wso2-is/is" || p.Base.Verify == nil {
				t.Errorf("%s: base %+v", tc.yaml, p.Base)
			} else if k := p.Base.Verify.Key; k != "" && !strings.HasPrefix(k, "env://") && k != filepath.Join(dir, "keys/wso2.pub") {
				t.Errorf("%s: key %q, want it resolved against the profile's folder", tc.yaml, k)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.err)
		}
	}
}

func TestSplitTag(t *testing.T) {
	for ref, want := range map[string][2]string{
		"registry.wso2.com/wso2-is/is:7.1.0.3":    {"registry.wso2.com/wso2-is/is", "7.1.0.3"},
		"127.0.0.1:5000/wso2is":                   {"127.0.0.1:5000/wso2is", ""},
		"127.0.0.1:5000/wso2is:5.8.0":             {"127.0.0.1:5000/wso2is", "5.8.0"},
		"docker.wso2.com/wso2is@sha256:abc":       {"docker.wso2.com/wso2is", ""},
		"docker.wso2.com/wso2is:5.8.0@sha256:abc": {"docker.wso2.com/wso2is:5.8.0", ""},
	} {
		repo, tag := profiles.SplitTag(ref)
		if repo != want[0] || tag != want[1] {
			t.Errorf("SplitTag(%q) = %q, %q; want %q, %q", ref, repo, tag, want[0], want[1])
		}
	}
	p := &profiles.Profile{Base: profiles.Base{Mirror: "registry.acme.com/mirror/wso2is"}}
	if got := p.InMirror("docker.wso2.com/wso2is:5.8.0-alpine3.10"); got != "registry.acme.com/mirror/wso2is:5.8.0-alpine3.10" {
		t.Errorf("InMirror by tag = %q", got)
	}
	if got := p.InMirror("docker.wso2.com/wso2is@sha256:abc"); got != "registry.acme.com/mirror/wso2is@sha256:abc" {
		t.Errorf("InMirror by digest = %q", got)
	}
}

// TestAliasBudget: aliases cannot make a small file expand into unbounded work or an
// unbounded list of problems: a 1000-key mapping aliased 1000 times is a million values
// (and, unknown keys each, a million problems) from a file of a few kilobytes.
func TestAliasBudget(t *testing.T) {
	for name, key := range map[string]string{
		"values":   "dest", // a known field, written over and over
		"problems": "bogus",
	} {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("product: wso2is\nversion: 5.8.0\nx: &in {")
			for i := 0; i < 1000; i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s%d: v", key, i)
			}
			b.WriteString("}\ninputs: [")
			for i := 0; i < 1000; i++ {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString("*in")
			}
			b.WriteString("]\n")
			start := time.Now()
			_, err := profiles.Parse(filepath.Join(t.TempDir(), "laughs.yaml"), []byte(b.String()))
			var perr *profiles.Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v, want a profile error", err)
			}
			if len(perr.Problems) > 60 {
				t.Errorf("%d problems reported: the list is not bounded", len(perr.Problems))
			}
			if !strings.Contains(err.Error(), "more than") {
				t.Errorf("the error does not say a bound was reached:\n%.2000s", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("parsing took %s", d)
			}
		})
	}
}

// TestSecretNames: secret-looking variables are found in any spelling, and secrets
// passed as -D properties or --flags in a value; references to secrets are not.
func TestSecretNames(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "DBPASSWORD": true, "dbPassword": true, "MYSQL_PWD": true, "DB_PASS": true,
		"ApiKey": true, "AWS_SECRET_ACCESS_KEY": true, "GITHUB_TOKEN": true, "keystore.password": true,
		"PWD": false, "KEYSTORE_PASSWORD_FILE": false, "TOKEN_ENDPOINT_URL": false, "JAVA_OPTS": false,
		"PASSPORT_MODE": false, "WSO2_SERVER_HOME": false, "KEYSTORE_TYPE": false,
	} {
		if got := profiles.LooksSecret(name); got != want {
			t.Errorf("LooksSecret(%q) = %v, want %v", name, got, want)
		}
	}
	for value, want := range map[string]string{
		"-Xmx2g -Djavax.net.ssl.trustStorePassword=wso2carbon": "-Djavax.net.ssl.trustStorePassword=…",
		`-Ddb.password="s3 cret" -Xmx1g`:                       "-Ddb.password=…",
		"--api-key=abc":                                        "--api-key=…",
		"-Djavax.net.ssl.trustStorePassword=$TS_PASSWORD":      "",
		"-Djavax.net.ssl.trustStore=/x/client-truststore.jks":  "",
		"-Xmx2g": "",
	} {
		if got := profiles.SecretInValue(value); got != want {
			t.Errorf("SecretInValue(%q) = %q, want %q", value, got, want)
		}
	}
	_, err := profiles.Parse(filepath.Join(t.TempDir(), "p.yaml"), []byte("product: wso2is\nversion: 5.8.0\nupdate: {wum: 1565855673150}\nbase: {image: docker.wso2.com/wso2is}\nuser: {uid: 802, gid: 802}\nenv:\n  JAVA_OPTS: -Djavax.net.ssl.trustStorePassword=wso2carbon\n  dbPassword: x\n"))
	if err == nil || !strings.Contains(err.Error(), "env.JAVA_OPTS: holds -Djavax.net.ssl.trustStorePassword=…") || !strings.Contains(err.Error(), "env.dbPassword: looks like a secret") || strings.Contains(err.Error(), "=wso2carbon") {
		t.Errorf("error %v", err)
	}
}
