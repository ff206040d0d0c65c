package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/internal/netfault"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/verify"
)

// TestFaultMatrix puts a fault-injecting proxy between wso2img (and BuildKit) and the
// registry, and for each stage of publishing × each fault checks that the run either
// completes or exits non-zero, that no tag ever names an image without a valid
// signature, and that a rerun with the fault gone completes with the same digest.
// The matrix is printed in the test log (go test -v -run TestFaultMatrix) and kept in
// docs/RELIABILITY.md.
func TestFaultMatrix(t *testing.T) {
	reg, bk := needBuildkit(t)
	p := daemons.proxy
	w := newWorld(t, reg)
	w.pushIS58()
	key, pub := signtest.Keys(t)
	t.Setenv("COSIGN_PASSWORD", signtest.Password)
	// Everything goes through the proxy: the base (mirrored under the proxy's host, the
	// same registry behind it) and the target.
	through := p.Host() + strings.TrimPrefix(w.prefix, reg.Host)
	w.file("conf/deployment.toml", "[server]\nhostname = \"faults\"\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - path: conf/deployment.toml\n    dest: repository/conf/deployment.toml\n")
	build := func(cell string) (result, []buildResult) {
		r := runCLI(t, "build", "--json", "--progress", "quiet", "--buildkit-host", bk.Addr, "--registry", through+"/"+cell,
			"--insecure-registry", p.Host(), "--mirror", "docker.wso2.com="+through, "--cache-dir", w.cache,
			"--key", key, "--tlog-upload=false", "--stall-timeout", "2s", file)
		var out []buildResult
		if r.code == 0 {
			out = decodeBuilds(t, r.stdout)
		}
		return r, out
	}
	ro := registry.Options{Insecure: []string{p.Host(), reg.Host}}
	v, err := verify.New(context.Background(), verify.Options{Registry: ro, Signature: verify.SignatureOptions{Key: pub, IgnoreTlog: true}})
	if err != nil {
		t.Fatal(err)
	}

	_, ref := build("reference")
	if len(ref) != 1 {
		t.Fatal("the reference build failed")
	}
	want := ref[0].Digest

	repoPath := func(cell string) string {
		return regexp.QuoteMeta(strings.TrimPrefix(through, p.Host()+"/") + "/" + cell + "/wso2is")
	}
	notWSO2img := func(r *http.Request) bool { return !strings.Contains(r.UserAgent(), "wso2img") }
	stages := []struct {
		name, path string
		skip       int
		when       func(*http.Request) bool
	}{
		{name: "layer blob (BuildKit)", path: "/blobs/uploads/", when: notWSO2img},
		{name: "manifest (BuildKit)", path: `/manifests/sha256:[0-9a-f]{64}$`, when: notWSO2img},
		{name: "signature", path: `/manifests/sha256-[0-9a-f]{64}\.sig$`},
		{name: "attestations (provenance and SBOM, one write)", path: `/manifests/sha256-[0-9a-f]{64}\.att$`},
		{name: "signature or attestation layer (a blob wso2img uploads)", path: "/blobs/uploads/", when: func(r *http.Request) bool { return strings.Contains(r.UserAgent(), "wso2img") }, skip: 1},
		{name: "unique tag", path: `/manifests/5\.8\.0\.1565855673150-alpine3\.10$`},
		{name: "floating tag", path: `/manifests/5\.8\.0-alpine3\.10$`},
	}
	faults := []struct {
		name   string
		action netfault.Action
		times  int
	}{
		{"503 twice", netfault.Respond(http.StatusServiceUnavailable), 2},
		{"403 always", netfault.Respond(http.StatusForbidden), 0},
		{"reset twice", netfault.Reset(netfault.AfterBody), 2},
		{"stall once", netfault.Stall(5 * time.Second), 1},
	}

	table := map[[2]int]string{}
	for si, st := range stages {
		for fi, f := range faults {
			cell := fmt.Sprintf("s%d-f%d", si, fi)
			t.Run(st.name+"/"+f.name, func(t *testing.T) {
				p.Clear()
				name, err := p.Add(netfault.Rule{Name: cell, Method: http.MethodPut, Path: regexp.MustCompile("^/v2/" + repoPath(cell) + st.path),
					When: st.when, Skip: st.skip, Times: f.times, Action: f.action})
				if err != nil {
					t.Fatal(err)
				}
				r, _ := build(cell)
				p.Clear()
				if p.Fired(name) == 0 {
					t.Fatalf("the fault never fired: the cell tests nothing\n%s", r.stderr)
				}
				outcome := "completed"
				if r.code != 0 {
					outcome = fmt.Sprintf("exit %d", r.code)
				}
				// No tag names an image without a valid signature.
				tagged := unsignedTags(t, v, ro, through+"/"+cell+"/wso2is")
				if tagged != "" {
					t.Errorf("after %s: %s", outcome, tagged)
				}
				// With the fault gone, a rerun completes with the same digest.
				r2, again := build(cell)
				if r2.code != 0 || len(again) != 1 || again[0].Digest != want || len(again[0].Tags) != 2 {
					t.Fatalf("the rerun: exit %d, %+v, want digest %s and two tags\n%s", r2.code, again, want, r2.stderr)
				}
				if bad := unsignedTags(t, v, ro, through+"/"+cell+"/wso2is"); bad != "" {
					t.Errorf("after the rerun: %s", bad)
				}
				table[[2]int{si, fi}] = outcome + ", rerun same digest"
				if r.code != 0 {
					t.Logf("%s / %s: %s: %s", st.name, f.name, outcome, lastLine(r.stderr))
				}
			})
		}
	}
	var b strings.Builder
	b.WriteString("\n| stage \\ fault |")
	for _, f := range faults {
		b.WriteString(" " + f.name + " |")
	}
	b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(faults)) + "\n")
	for si, st := range stages {
		b.WriteString("| " + st.name + " |")
		for fi := range faults {
			cell := table[[2]int{si, fi}]
			if cell == "" {
				cell = "FAILED"
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	t.Logf("fault matrix (no tag named an unsigned image in any cell):%s", b.String())
}

// unsignedTags lists the tags of repo whose image has no valid signature by the test's
// key, or "" when there are none.
func unsignedTags(t *testing.T, v *verify.Verifier, ro registry.Options, repo string) string {
	t.Helper()
	r, err := ro.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	names, err := ro.ListTags(context.Background(), r)
	if err != nil {
		t.Fatalf("listing %s: %v", repo, err)
	}
	var bad []string
	for _, tag := range names {
		if strings.HasPrefix(tag, "sha256-") {
			continue
		}
		rep, _ := v.Verify(context.Background(), repo+":"+tag)
		if rep == nil {
			bad = append(bad, tag+" (unreadable)")
			continue
		}
		for _, c := range rep.Checks {
			if c.ID == verify.CheckSignature && c.Status != verify.Pass {
				bad = append(bad, tag+" names an image without a valid signature")
			}
		}
	}
	return strings.Join(bad, "; ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestBuildkitdKilledMidBuild: a daemon that dies in the middle of a build gives an
// error naming it, nothing is tagged; once it runs again, the next build completes.
func TestBuildkitdKilledMidBuild(t *testing.T) {
	reg, _ := needBuildkit(t)
	p := daemons.proxy
	w := newWorld(t, reg)
	w.pushIS58()
	dir := t.TempDir()
	bk, err := testenv.StartBuildkitd(context.Background(), dir, []string{reg.Host, p.Host()})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	through := p.Host() + strings.TrimPrefix(w.prefix, reg.Host)
	w.file("conf/deployment.toml", "[server]\n", 0o644)
	file := w.profile("p.yaml", "extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\ninputs:\n  - path: conf/deployment.toml\n    dest: repository/conf/deployment.toml\n")
	args := []string{"build", "--json", "--progress", "quiet", "--buildkit-host", bk.Addr, "--registry", through + "/killed",
		"--insecure-registry", p.Host(), "--mirror", "docker.wso2.com=" + through, "--cache-dir", w.cache, file}
	// BuildKit's push stalls at the proxy: the daemon is surely mid-build when it dies.
	p.Clear()
	defer p.Clear()
	rule, err := p.Add(netfault.Rule{Method: http.MethodPut, Path: regexp.MustCompile("/killed/wso2is/blobs/uploads/"),
		When: func(r *http.Request) bool { return !strings.Contains(r.UserAgent(), "wso2img") }, Action: netfault.Stall(0)})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) && p.Fired(rule) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		bk.Kill()
	}()
	r := runCLI(t, args...)
	if r.code == 0 || !strings.Contains(r.stderr, bk.Addr) || !(strings.Contains(r.stderr, "stopped answering") || strings.Contains(r.stderr, "lost while building")) {
		t.Errorf("exit %d; the error does not name the daemon or say it stopped answering:\n%s", r.code, r.stderr)
	}
	p.Clear()
	names, _ := listTags(through + "/killed/wso2is")
	for _, n := range names {
		if !strings.HasPrefix(n, "sha256-") {
			t.Errorf("tag %s written by a build whose daemon died", n)
		}
	}
	bk.Close()
	bk2, err := testenv.StartBuildkitd(context.Background(), dir, []string{reg.Host, p.Host()})
	if err != nil {
		t.Fatal(err)
	}
	defer bk2.Close()
	args[5] = bk2.Addr
	if r := runCLI(t, args...); r.code != 0 {
		t.Fatalf("the build after the daemon came back: exit %d\n%s", r.code, r.stderr)
	}
}
