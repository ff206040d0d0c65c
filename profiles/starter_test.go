package profiles_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/profiles"
)

// uncomment turns the commented block that starts at the line "# "+head back into YAML:
// that line and the commented lines after it, up to a blank line, lose their first cut
// bytes. It fails the test when the block is not there.
func uncomment(t *testing.T, text, head string, cut int) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	start := -1
	for i, l := range lines {
		if l == "# "+head {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("no commented %q block in:\n%s", head, text)
	}
	for i := start; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		lines[i] = lines[i][cut:]
	}
	return strings.Join(lines, "\n")
}

func TestStarterEveryStock(t *testing.T) {
	for _, s := range profiles.StockProfiles() {
		t.Run(s.Name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "acme.yaml")
			out, err := profiles.Starter(s.Name, profiles.StarterOptions{File: file})
			if err != nil {
				t.Fatal(err)
			}
			again, _ := profiles.Starter(s.Name, profiles.StarterOptions{File: file})
			if !bytes.Equal(out, again) {
				t.Error("two renders differ")
			}
			write(t, dir, "acme.yaml", string(out))
			p, err := profiles.Load(file)
			if err != nil {
				t.Fatalf("the starter does not load as written: %v\n%s", err, out)
			}
			kind := "level"
			if strings.HasPrefix(s.Profile.Base.Image, "docker.wso2.com/") {
				kind = "wum"
			}
			if p.Extends != s.Name || p.Update.Latest != kind || !p.Update.Follows() {
				t.Errorf("extends %q update %+v, want %s following the latest %s", p.Extends, p.Update, s.Name, kind)
			}
			if want := profiles.ExampleRegistry + "/" + s.Profile.Product; p.Target.Repository != want {
				t.Errorf("target = %q, want %q", p.Target.Repository, want)
			}
			if p.User != s.Profile.User || p.Home != s.Profile.Home || !reflectEqual(p.Ports, s.Profile.Ports) || p.Base.Image != s.Profile.Base.Image {
				t.Errorf("the starter changed what the stock profile fixes: %+v", p)
			}
			if len(p.Inputs) != 0 || len(p.Env) != 0 || !reflectEqual(p.Base.Verify, s.Profile.Base.Verify) {
				t.Errorf("the examples are not all commented out: inputs %v env %v verify %v", p.Inputs, p.Env, p.Base.Verify)
			}
			text := string(out)
			for _, want := range []string{"# scan:\n#   severity: HIGH\n#   ignore: .trivyignore.yaml\n#   scope: added\n", "CHANGE THIS", "wso2img plan " + file, "mysql-connector-j-8.4.0.jar"} {
				if !strings.Contains(text, want) {
					t.Errorf("starter lacks %q", want)
				}
			}
			if signed := strings.Contains(text, "# base:\n#   verify: false"); signed != strings.HasPrefix(s.Profile.Base.Image, "registry.wso2.com/") {
				t.Errorf("the signature-check example is shown: %v, for base %s", signed, s.Profile.Base.Image)
			}
		})
	}
}

// TestStarterExamples uncomments the examples of every starter and loads the result:
// they must be valid profile YAML once the checksum placeholder is filled in.
func TestStarterExamples(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, s := range profiles.StockProfiles() {
		t.Run(s.Name, func(t *testing.T) {
			dir := t.TempDir()
			out, err := profiles.Starter(s.Name, profiles.StarterOptions{File: filepath.Join(dir, "p.yaml")})
			if err != nil {
				t.Fatal(err)
			}
			text := uncomment(t, string(out), "inputs:", 2)
			text = uncomment(t, text, "env:", 2)
			text = uncomment(t, text, "ports: ["+portList(s.Profile.Ports)+"]", 2)
			signed := strings.HasPrefix(s.Profile.Base.Image, "registry.wso2.com/")
			if signed {
				text = uncomment(t, text, "base:", 2)
			}
			// The placeholder is refused until replaced.
			write(t, dir, "p.yaml", text)
			write(t, dir, "conf/deployment.toml", "[server]\n")
			write(t, dir, "carbonapps/app_1.0.0.car", "car")
			write(t, dir, "wso2-public-key.pub", "key")
			if _, err := profiles.Load(filepath.Join(dir, "p.yaml")); err == nil || !strings.Contains(err.Error(), "inputs[0].sha256") {
				t.Fatalf("with the placeholder checksum: %v, want a problem at inputs[0].sha256", err)
			}
			write(t, dir, "p.yaml", strings.Replace(text, "PUT-THE-SHA256-OF-THE-JAR-HERE", sum, 1))
			p, err := profiles.Load(filepath.Join(dir, "p.yaml"))
			if err != nil {
				t.Fatalf("uncommented examples do not load: %v\n%s", err, text)
			}
			mi := s.Profile.Product == "wso2mi"
			jar, conf := "repository/components/lib/mysql-connector-j-8.4.0.jar", "repository/conf/deployment.toml"
			want := 2
			if mi {
				jar, conf, want = "lib/mysql-connector-j-8.4.0.jar", "conf/deployment.toml", 3
			}
			if len(p.Inputs) != want {
				t.Fatalf("%d inputs, want %d", len(p.Inputs), want)
			}
			if p.Inputs[0].SHA256 != sum || p.DestPath(0) != p.Home+"/"+jar || p.DestPath(1) != p.Home+"/"+conf || p.Inputs[1].Mode != "0640" {
				t.Errorf("inputs = %+v, dests %s %s", p.Inputs, p.DestPath(0), p.DestPath(1))
			}
			if mi && (!p.Inputs[2].IsDir() || p.DestPath(2) != p.Home+"/repository/deployment/server/carbonapps") {
				t.Errorf("carbon apps input = %+v → %s", p.Inputs[2], p.DestPath(2))
			}
			if p.Env["JAVA_OPTS"] == "" || !reflectEqual(p.Ports, s.Profile.Ports) {
				t.Errorf("env %v ports %v", p.Env, p.Ports)
			}
			if signed && (p.Base.Verify == nil || !p.Base.Verify.Off) {
				t.Errorf("base.verify = %+v", p.Base.Verify)
			}
		})
	}
}

// portList writes ports as the starter does: "8290, 8253".
func portList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}

func TestStarterOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, stock string
		opts        profiles.StarterOptions
		want        string // a line the starter holds
		check       func(*profiles.Profile) bool
	}{
		{"pinned level", "wso2is-7.3.0", profiles.StarterOptions{Update: profiles.Update{Level: 12}}, "  level: 12\n",
			func(p *profiles.Profile) bool { return p.Update.Level == 12 && p.Tags()[0].Tag == "7.3.0.12" }},
		{"pinned wum", "wso2is-5.8.0", profiles.StarterOptions{Update: profiles.Update{WUM: 1565855673150}}, "  wum: 1565855673150\n",
			func(p *profiles.Profile) bool {
				return p.Update.WUM == 1565855673150 && p.BaseRef() == "docker.wso2.com/wso2is:5.8.0.1565855673150"
			}},
		{"latest of the other kind", "wso2is-7.3.0", profiles.StarterOptions{Update: profiles.Update{Latest: "wum"}}, "  wum: latest\n",
			func(p *profiles.Profile) bool { return p.Update.Latest == "wum" }},
		{"target", "wso2am-universal-gw-4.5.0", profiles.StarterOptions{Target: "registry.acme.com/platform/gateway"}, "  repository: registry.acme.com/platform/gateway\n",
			func(p *profiles.Profile) bool { return p.Target.Repository == "registry.acme.com/platform/gateway" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.File = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			out, err := profiles.Starter(tc.stock, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("starter lacks %q:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "CHANGE THIS") != (tc.opts.Target == "") {
				t.Errorf("the change-this note shows for target %q", tc.opts.Target)
			}
			write(t, dir, filepath.Base(tc.opts.File), string(out))
			p, err := profiles.Load(tc.opts.File)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Errorf("loaded %+v", p)
			}
		})
	}
}

func TestStarterRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  profiles.StarterOptions
		field string
	}{
		{"level out of range", profiles.StarterOptions{File: "x.yaml", Update: profiles.Update{Level: 10000}}, "update.level"},
		{"short wum", profiles.StarterOptions{File: "x.yaml", Update: profiles.Update{WUM: 123}}, "update.wum"},
		{"target with a tag", profiles.StarterOptions{File: "x.yaml", Target: "registry.acme.com/is:1.0"}, "target.repository"},
		{"file name that is no profile name", profiles.StarterOptions{File: "My Profile.yaml"}, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := profiles.Starter("wso2is-7.3.0", tc.opts)
			var perr *profiles.Error
			if !errors.As(err, &perr) || perr.File != tc.opts.File || !strings.Contains(err.Error(), tc.field+": ") {
				t.Fatalf("Starter = %v, want a *profiles.Error about %s in %s", err, tc.field, tc.opts.File)
			}
		})
	}

	_, err := profiles.Starter("wso2is-7.3", profiles.StarterOptions{})
	var uerr *profiles.UnknownStockError
	if !errors.As(err, &uerr) || uerr.Name != "wso2is-7.3" {
		t.Fatalf("Starter(unknown) = %v, want an *UnknownStockError", err)
	}
	var names []string
	for _, s := range profiles.StockProfiles() {
		names = append(names, s.Name)
		if !strings.Contains(err.Error(), "\n  "+s.Name) {
			t.Errorf("the error does not list %s:\n%v", s.Name, err)
		}
	}
	if !reflectEqual(uerr.Known, names) || !strings.Contains(err.Error(), `did you mean "wso2is-7.3.0"?`) {
		t.Errorf("known %v; message %v", uerr.Known, err)
	}
	if _, err := profiles.StarterIgnore("nope", time.Now()); !errors.As(err, &uerr) {
		t.Errorf("StarterIgnore(unknown) = %v", err)
	}
	if _, err := profiles.LookupStock("nope"); !errors.As(err, &uerr) {
		t.Errorf("LookupStock(unknown) = %v", err)
	}
	if s, err := profiles.LookupStock("wso2am-tm-4.6.0"); err != nil || s.Name != "wso2am-tm-4.6.0" || s.Profile.Product != "wso2am-tm" {
		t.Errorf("LookupStock = %+v, %v", s, err)
	}
}

// trivyIgnore is the shape of Trivy's .trivyignore.yaml (pkg/result.IgnoreConfig).
type trivyIgnore struct {
	Vulnerabilities   []trivyFinding `yaml:"vulnerabilities"`
	Misconfigurations []trivyFinding `yaml:"misconfigurations"`
	Secrets           []trivyFinding `yaml:"secrets"`
	Licenses          []trivyFinding `yaml:"licenses"`
}

type trivyFinding struct {
	ID        string    `yaml:"id"`
	Paths     []string  `yaml:"paths"`
	PURLs     []string  `yaml:"purls"`
	ExpiredAt time.Time `yaml:"expired_at"`
	Statement string    `yaml:"statement"`
}

func decodeStrict(t *testing.T, b []byte) (trivyIgnore, map[string]any) {
	t.Helper()
	var c trivyIgnore
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(&c); err != nil {
		t.Fatalf("not a Trivy ignore file: %v\n%s", err, b)
	}
	var keys map[string]any
	if err := yaml.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	return c, keys
}

func TestStarterIgnore(t *testing.T) {
	expires := time.Date(2026, 9, 30, 15, 4, 5, 0, time.FixedZone("x", 5*3600))
	for _, tc := range []struct{ stock, jar string }{
		{"wso2am-4.5.0", "home/wso2carbon/wso2am-4.5.0/repository/components/lib/mysql-connector-j-8.4.0.jar"},
		{"wso2mi-4.4.0", "home/wso2carbon/wso2mi-4.4.0/lib/mysql-connector-j-8.4.0.jar"},
	} {
		t.Run(tc.stock, func(t *testing.T) {
			out, err := profiles.StarterIgnore(tc.stock, expires)
			if err != nil {
				t.Fatal(err)
			}
			c, keys := decodeStrict(t, out)
			if len(c.Vulnerabilities)+len(c.Misconfigurations)+len(c.Secrets)+len(c.Licenses) != 0 {
				t.Errorf("the stub accepts findings: %+v", c)
			}
			for _, k := range []string{"vulnerabilities", "misconfigurations", "secrets", "licenses"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("the stub lacks %s", k)
				}
			}
			c, _ = decodeStrict(t, []byte(uncomment(t, string(out), " - id: CVE-YYYY-NNNNN", 1)))
			if len(c.Vulnerabilities) != 1 {
				t.Fatalf("uncommented example = %+v, want one vulnerability", c)
			}
			v := c.Vulnerabilities[0]
			if v.ID != "CVE-YYYY-NNNNN" || len(v.Paths) != 1 || v.Paths[0] != tc.jar || v.Statement == "" ||
				!v.ExpiredAt.Equal(time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("example entry = %+v", v)
			}
		})
	}
}

func TestStarterToStdout(t *testing.T) {
	out, err := profiles.Starter("wso2mi-4.5.0", profiles.StarterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "wso2img plan FILE") {
		t.Errorf("a starter for stdout names no file to plan:\n%s", out)
	}
	_, err = profiles.Starter("wso2mi-4.5.0", profiles.StarterOptions{Target: "Not A Repo"})
	if err == nil || !strings.Contains(err.Error(), "<stdout>") {
		t.Errorf("an error about a starter for stdout = %v, want it to name <stdout>", err)
	}
}
