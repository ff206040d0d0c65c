package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/profiles"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInitPlan: the profile init writes passes `wso2img plan` as written, against a
// stand-in of WSO2's image: following the latest update of its kind by default, or the
// level and target given.
func TestInitPlan(t *testing.T) {
	w := newWorld(t, needRegistry(t))

	t.Run("U2 latest level", func(t *testing.T) {
		s := stockImage{"wso2am-universal-gw-4.7.0", "wso2-apim/am-universal-gw", "wso2am-universal-gw", "4.7.0", 10001, amGatewayPorts}
		digest := w.pushStock(s, 2, 11)
		file := filepath.Join(w.dir, "gw", "acme-gw.yaml")
		r := runCLI(t, "init", "--from", s.stock, "-o", file)
		if r.code != 0 {
			t.Fatalf("init exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, "wrote "+file) || !strings.Contains(r.stdout, "wrote "+filepath.Join(w.dir, "gw", ".trivyignore.yaml")) {
			t.Errorf("init did not say what it wrote:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "set target.repository in "+file) {
			t.Errorf("init gave no next step:\n%s", r.stderr)
		}
		p := planOne(t, w, file)
		checkPlan(t, p, s, 11, digest, "registry.example.com/acme/wso2am-universal-gw")
	})

	t.Run("WUM latest", func(t *testing.T) {
		old := standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(1560000000000)}
		w.pushBase(old, []string{"wso2is:5.8.0.1560000000000-alpine3.10"})
		digest := w.pushIS58()
		file := filepath.Join(w.dir, "is.yaml")
		if r := runCLI(t, "init", "--from", "wso2is-5.8.0-alpine", "-o", file, "--with-trivyignore=false"); r.code != 0 {
			t.Fatalf("init exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(readFile(t, file), "\n  wum: latest\n") {
			t.Errorf("a WUM-era starter does not follow the latest WUM update:\n%s", readFile(t, file))
		}
		p := planOne(t, w, file)
		if len(p.Tags) != 2 || p.Tags[0].Tag != "5.8.0.1565855673150-alpine3.10" || p.Base.Digest != digest || p.UID != 802 || p.Home != "/home/wso2carbon/wso2is-5.8.0" {
			t.Errorf("plan = %+v", p)
		}
	})

	t.Run("pinned level and target", func(t *testing.T) {
		s := stockImage{"wso2mi-4.4.0", "wso2-integrator/mi", "wso2mi", "4.4.0", 10802, []int{8290, 8253}}
		digest := w.pushStock(s, 2, 5)
		file := filepath.Join(w.dir, "mi.yaml")
		r := runCLI(t, "init", "--from", s.stock, "--level", "2", "--target", "registry.acme.test/integration/mi", "-o", file)
		if r.code != 0 {
			t.Fatalf("init exit %d: %s", r.code, r.stderr)
		}
		if text := readFile(t, file); strings.Contains(text, "CHANGE THIS") || !strings.Contains(text, "  level: 2\n") {
			t.Errorf("starter with --level and --target:\n%s", text)
		}
		checkPlan(t, planOne(t, w, file), s, 2, digest, "registry.acme.test/integration/mi")
	})
}

func planOne(t *testing.T, w *world, file string) planJSON {
	t.Helper()
	if text := readFile(t, file); strings.Contains(text, "# base:\n#   verify: false\n") {
		// A registry.wso2.com starter checks the base against WSO2's key, which the
		// stand-in is not signed with: refused as written (the check is on), planned once
		// its commented opt-out is taken, as for an unsigned mirror.
		// Offline (as here), the check stops at fetching Sigstore's trust root for the
		// transparency log; online, at the missing signature.
		r := runCLI(t, append([]string{"plan", "--json"}, append(w.flags(), file)...)...)
		refused := (r.code == exitVerification && strings.Contains(r.stderr, "stock:wso2-registry")) ||
			(r.code == exitFailure && strings.Contains(r.stderr, "Sigstore trust root"))
		if !refused {
			t.Fatalf("the starter on an unsigned stand-in: exit %d, want %d naming WSO2's key\n%s", r.code, exitVerification, r.stderr)
		}
		if err := os.WriteFile(file, []byte(strings.Replace(text, "# base:\n#   verify: false\n", "base:\n  verify: false\n", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, append([]string{"plan", "--json"}, append(w.flags(), file)...)...)
	if r.code != 0 {
		t.Fatalf("plan of the starter profile: exit %d: %s\n%s", r.code, r.stderr, readFile(t, file))
	}
	var plans []planJSON
	if err := json.Unmarshal([]byte(r.stdout), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("plan --json = %v: %s", err, r.stdout)
	}
	return plans[0]
}

// TestInitRefusesOverwrite: nothing is overwritten without --force, and a refusal
// writes nothing at all.
func TestInitRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	file, ignore := filepath.Join(dir, "acme.yaml"), filepath.Join(dir, ".trivyignore.yaml")
	if r := runCLI(t, "init", "--from", "wso2is-7.3.0", "-o", file); r.code != 0 {
		t.Fatalf("init exit %d: %s", r.code, r.stderr)
	}
	if _, err := profiles.Load(file); err != nil {
		t.Fatalf("the starter does not load: %v", err)
	}
	if !strings.HasPrefix(readFile(t, ignore), "# Findings the vulnerability gate accepts") {
		t.Errorf(".trivyignore.yaml = %q", readFile(t, ignore))
	}

	edited := "# mine\n"
	for _, f := range []string{file, ignore} {
		if err := os.WriteFile(f, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := runCLI(t, "init", "--from", "wso2is-7.3.0", "-o", file)
	if r.code != 2 || !strings.Contains(r.stderr, file+" exists") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("second init: exit %d, %s; want 2 naming %s", r.code, r.stderr, file)
	}

	// Only the ignore file is in the way: it is named, and the profile is not written.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, "init", "--from", "wso2is-7.3.0", "-o", file)
	if r.code != 2 || !strings.Contains(r.stderr, ignore+" exists") || !strings.Contains(r.stderr, "--with-trivyignore=false") {
		t.Errorf("init with an ignore file: exit %d, %s; want 2 naming %s", r.code, r.stderr, ignore)
	}
	if _, err := os.Stat(file); err == nil {
		t.Errorf("a refused init wrote %s", file)
	}
	if got := readFile(t, ignore); got != edited {
		t.Errorf("a refused init changed %s: %q", ignore, got)
	}

	// Keeping the ignore file, the profile is written.
	if r := runCLI(t, "init", "--from", "wso2is-7.3.0", "-o", file, "--with-trivyignore=false"); r.code != 0 || readFile(t, ignore) != edited {
		t.Errorf("init --with-trivyignore=false: exit %d, %s", r.code, r.stderr)
	}
	// --force replaces both.
	if err := os.WriteFile(file, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "init", "--from", "wso2am-4.5.0", "-o", file, "--force"); r.code != 0 {
		t.Fatalf("init --force: exit %d, %s", r.code, r.stderr)
	}
	if !strings.Contains(readFile(t, file), "extends: wso2am-4.5.0\n") || readFile(t, ignore) == edited {
		t.Errorf("--force did not overwrite both files")
	}
}

func TestInitUsage(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	stock := profiles.StockProfiles()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown stock", []string{"--from", "wso2is-7.3"}, []string{`no stock profile "wso2is-7.3"`, `did you mean "wso2is-7.3.0"?`}},
		{"no --from", nil, []string{"init needs --from"}},
		{"level and wum", []string{"--from", "wso2is-7.3.0", "--level", "3", "--wum", "latest"}, []string{"not both"}},
		{"bad level", []string{"--from", "wso2is-7.3.0", "--level", "three"}, []string{`--level "three"`}},
		{"level 0", []string{"--from", "wso2is-7.3.0", "--level", "0"}, []string{`--level "0"`}},
		{"short wum", []string{"--from", "wso2is-5.8.0", "--wum", "1565855673"}, []string{"update.wum", "13 digits"}},
		{"bad target", []string{"--from", "wso2is-7.3.0", "--target", "registry.acme.test/is:7"}, []string{"target.repository", "not a repository"}},
		{"argument", []string{"wso2is-7.3.0"}, []string{"takes no arguments", "--from"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append([]string{"init"}, tc.args...)...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2: %s", r.code, r.stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("error lacks %q:\n%s", want, r.stderr)
				}
			}
			if tc.name == "unknown stock" || tc.name == "no --from" {
				for _, s := range stock {
					if !strings.Contains(r.stderr, "\n  "+s.Name) {
						t.Errorf("the error does not list %s", s.Name)
					}
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("a refused init wrote %v", entries)
			}
		})
	}
}

// TestInitDefaultsAndStdout: without -o the profile is PRODUCT.yaml here; -o - prints
// it and writes nothing.
func TestInitDefaultsAndStdout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	r := runCLI(t, "init", "--from", "wso2am-tm-4.6.0", "-o", "-")
	if r.code != 0 {
		t.Fatalf("init -o -: exit %d, %s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("init -o - wrote %v", entries)
	}
	stdout := r.stdout
	p, err := profiles.Parse("tm.yaml", []byte(stdout))
	if err != nil || p.Extends != "wso2am-tm-4.6.0" || p.Update.Latest != "level" {
		t.Fatalf("stdout is not the starter profile (%v):\n%s", err, r.stdout)
	}

	if r := runCLI(t, "init", "--from", "wso2am-tm-4.6.0"); r.code != 0 {
		t.Fatalf("init: exit %d, %s", r.code, r.stderr)
	}
	if got, want := readFile(t, "wso2am-tm.yaml"), strings.ReplaceAll(stdout, "wso2img plan FILE", "wso2img plan wso2am-tm.yaml"); got != strings.ReplaceAll(want, "wso2img build FILE", "wso2img build wso2am-tm.yaml") {
		t.Errorf("the file differs from what -o - prints:\n%s", got)
	}
	if _, err := os.Stat(".trivyignore.yaml"); err != nil {
		t.Errorf("no ignore stub next to the profile: %v", err)
	}
}
