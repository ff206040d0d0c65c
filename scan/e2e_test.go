package scan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/internal/trivydb"
	"github.com/wso2img/wso2img/scan"
)

// The offline vulnerability DB of these tests: one OS advisory that the base image's musl
// matches, and two advisories of log4j-core.
var (
	dbVulns = []trivydb.Vulnerability{
		trivydb.Musl.Vulnerabilities[0],
		trivydb.Log4Shell.Vulnerabilities[0],
		{ID: "CVE-2021-44832", Title: "log4j-core: remote code execution via JDBC Appender", Severity: "MEDIUM"},
	}
	dbAdvisories = []trivydb.Advisory{
		trivydb.Musl.Advisories[0],
		trivydb.Log4Shell.Advisories[0],
		{Bucket: trivydb.BucketMavenGHSA, Package: log4jCore, VulnerabilityID: "CVE-2021-44832",
			VulnerableVersions: []string{">= 2.0-beta7, < 2.17.1"}, PatchedVersions: []string{"2.17.1"}},
	}
)

const (
	log4jCore = "org.apache.logging.log4j:log4j-core"
	home      = "home/wso2carbon/wso2is-5.8.0"
	// libJar is where a user drops a library; dropinJar is an OSGi-style renamed copy,
	// whose file name does not match its pom.properties, so Trivy looks it up in the
	// Java DB by SHA-1 first (and needs that DB's tables to exist).
	libJar    = home + "/repository/components/lib/log4j-core-2.14.1.jar"
	dropinJar = home + "/repository/components/dropins/log4j_core_2.14.1.wso2v1.jar"
	mediumJar = home + "/repository/components/lib/log4j-core-2.17.0.jar"
)

// update rewrites the report fixtures in testdata/ from the real Trivy runs of these tests.
var update = flag.Bool("update", false, "rewrite testdata/{base,log4shell,log4shell-ignored}.json from real Trivy runs")

// writeFixture writes Trivy's JSON report as testdata/name, indented, with -update.
func writeFixture(t *testing.T, name string, raw []byte) {
	t.Helper()
	if !*update {
		return
	}
	// The ignore file's path is absolute in Trivy's report: keep the fixture free of
	// this machine's paths.
	if wd, err := os.Getwd(); err == nil {
		raw = bytes.ReplaceAll(raw, []byte(wd+string(filepath.Separator)), nil)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatal(err)
	}
	b.WriteByte('\n')
	if err := os.WriteFile(filepath.Join("testdata", name), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixture is a registry with three images pushed by digest, and the offline DB.
type fixture struct {
	reg   *testenv.Registry
	cache string // Trivy cache dir holding the offline DB
	dbAt  time.Time
	// base: busybox stand-in plus Alpine 3.20 apk metadata with a vulnerable musl.
	// log4shell: base + log4j-core 2.14.1 twice (CVE-2021-44228 CRITICAL, CVE-2021-44832 MEDIUM).
	// medium: base + log4j-core 2.17.0 (CVE-2021-44832 MEDIUM only).
	base, log4shell, medium string
	// proxy receives every request Trivy makes to anything but the loopback registry.
	proxy *recordingProxy
}

func newFixture(t *testing.T, opts ...testenv.RegistryOption) *fixture {
	t.Helper()
	testenv.Need(t, "registry", "trivy")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := testenv.StartRegistry(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	if reg.User != "" {
		t.Setenv("DOCKER_CONFIG", dockerConfig(t, reg))
	}
	f := &fixture{reg: reg}
	f.populate(t, reg.Host)
	return f
}

// populate writes the offline DB and pushes the images to the registry at host.
func (f *fixture) populate(t *testing.T, host string) {
	t.Helper()
	f.cache = t.TempDir()
	f.dbAt = time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	if err := trivydb.WriteAt(f.cache, f.dbAt, dbAdvisories, dbVulns); err != nil {
		t.Fatal(err)
	}
	base := baseImage(t)
	f.base = push(t, host+"/wso2/wso2is-base:5.8.0", base)
	f.log4shell = push(t, host+"/acme/wso2is:log4shell", appendLayer(t, base, map[string][]byte{
		libJar:    jar(t, "2.14.1"),
		dropinJar: jar(t, "2.14.1"),
	}))
	f.medium = push(t, host+"/acme/wso2is:medium", appendLayer(t, base, map[string][]byte{mediumJar: jar(t, "2.17.0")}))
	f.proxy = startProxy(t)
}

// scanner is a Scanner on the offline DB whose Trivy would send any request for a
// non-loopback host to the recording proxy.
func (f *fixture) scanner(t *testing.T, log io.Writer, env ...string) *scan.Scanner {
	t.Helper()
	trivy, err := testenv.Bin("trivy")
	if err != nil {
		t.Fatal(err)
	}
	env = append([]string{"HTTPS_PROXY=" + f.proxy.url, "HTTP_PROXY=" + f.proxy.url, "https_proxy=" + f.proxy.url, "http_proxy=" + f.proxy.url, "NO_PROXY=", "no_proxy="}, env...)
	s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: f.cache, Offline: true, Log: log, Env: env, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if reqs := f.proxy.requests(); len(reqs) > 0 {
			t.Errorf("Trivy reached for the network in offline mode: %q", reqs)
		}
	})
	return s
}

// TestScanOffline runs the real Trivy, offline, against a loopback registry (plain
// HTTP, no --insecure), and checks detection, origin, threshold, scope, the report's
// metadata and the attestation predicate.
func TestScanOffline(t *testing.T) {
	f := newFixture(t)
	var log syncBuffer
	s := f.scanner(t, &log)
	ctx := context.Background()

	rep, err := s.Scan(ctx, scan.Request{Profile: "wso2is-acme", Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
	var gate *scan.GateError
	if !errors.As(err, &gate) {
		t.Fatalf("Scan(log4shell, HIGH) = %v, want a *GateError\nlog:\n%s", err, log.String())
	}
	if rep == nil {
		t.Fatal("Scan returned a GateError without the report")
	}
	wantLog4shell := func(path string) scan.Finding {
		return scan.Finding{
			ID: "CVE-2021-44228", Package: log4jCore, Path: path, InstalledVersion: "2.14.1", FixedVersion: "2.15.0",
			Severity: scan.Critical, Title: dbVulns[1].Title, Origin: scan.OriginInputs,
		}
	}
	wantFailed := []scan.Finding{wantLog4shell(dropinJar), wantLog4shell(libJar)}
	if got := essentials(rep.Failed); !slices.Equal(got, wantFailed) {
		t.Errorf("Failed =\n%s\nwant\n%s", fmtFindings(got), fmtFindings(wantFailed))
	}
	if got := essentials(gate.Failed); !slices.Equal(got, wantFailed) {
		t.Errorf("GateError.Failed = %s, want %s", fmtFindings(got), fmtFindings(wantFailed))
	}
	for _, want := range []string{
		"vulnerability gate refused " + f.log4shell + " (profile wso2is-acme): 2 findings added by the build at or above HIGH:",
		"CVE-2021-44228 " + log4jCore + " 2.14.1 → 2.15.0 " + libJar + " CRITICAL (inputs)",
		"CVE-2021-44228 " + log4jCore + " 2.14.1 → 2.15.0 " + dropinJar + " CRITICAL (inputs)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if gate.Profile != "wso2is-acme" || gate.Image != f.log4shell || gate.Threshold != scan.High || gate.Scope != scan.ScopeAdded {
		t.Errorf("GateError = %+v", gate)
	}
	musl := scan.Finding{ID: "CVE-2025-26519", Package: "musl", InstalledVersion: "1.2.5-r0", FixedVersion: "1.2.5-r1", Severity: scan.High, Title: dbVulns[0].Title, Origin: scan.OriginBase}
	medium := func(path, version string) scan.Finding {
		return scan.Finding{ID: "CVE-2021-44832", Package: log4jCore, Path: path, InstalledVersion: version, FixedVersion: "2.17.1", Severity: scan.Medium, Title: dbVulns[2].Title, Origin: scan.OriginInputs}
	}
	wantAll := []scan.Finding{wantLog4shell(dropinJar), wantLog4shell(libJar), musl, medium(dropinJar, "2.14.1"), medium(libJar, "2.14.1")}
	if got := essentials(rep.Findings); !slices.Equal(got, wantAll) {
		t.Errorf("Findings =\n%s\nwant\n%s", fmtFindings(got), fmtFindings(wantAll))
	}
	for _, fd := range rep.Findings {
		if fd.Class == "" || fd.Target == "" || fd.Layer == "" || fd.PURL == "" {
			t.Errorf("finding %s lacks Trivy's target, class, layer or purl: %+v", fd.ID, fd)
		}
	}
	if rep.Findings[2].Target != "wso2/wso2is-base:5.8.0 (alpine 3.20.3)" && !strings.Contains(rep.Findings[2].Target, "alpine 3.20.3") {
		t.Errorf("musl finding's target = %q, want the Alpine 3.20.3 OS", rep.Findings[2].Target)
	}
	if len(rep.Ignored) != 0 || len(rep.ExpiredIgnores) != 0 {
		t.Errorf("Ignored = %v, ExpiredIgnores = %v; want none (no ignore file)", rep.Ignored, rep.ExpiredIgnores)
	}
	digest := f.log4shell[strings.Index(f.log4shell, "@")+1:]
	if rep.Image != f.log4shell || rep.Digest != digest || rep.Base != f.base || rep.Profile != "wso2is-acme" {
		t.Errorf("report names image %q digest %q base %q profile %q", rep.Image, rep.Digest, rep.Base, rep.Profile)
	}
	wantScanner := scan.ScannerInfo{Name: "trivy", Version: "0.74.0", URI: "pkg:github/aquasecurity/trivy@0.74.0"}
	if rep.Scanner != wantScanner {
		t.Errorf("Scanner = %+v, want %+v", rep.Scanner, wantScanner)
	}
	if !rep.DB.UpdatedAt.Equal(f.dbAt) || rep.DB.URI != scan.DefaultDBRepository {
		t.Errorf("DB = %+v, want updated at %s from %s", rep.DB, f.dbAt, scan.DefaultDBRepository)
	}
	if rep.Threshold != scan.High || rep.Scope != scan.ScopeAdded || rep.StartedAt.IsZero() || rep.FinishedAt.Before(rep.StartedAt) {
		t.Errorf("Threshold %v Scope %v Started %v Finished %v", rep.Threshold, rep.Scope, rep.StartedAt, rep.FinishedAt)
	}
	checkPredicate(t, rep)
	writeFixture(t, "log4shell.json", rep.Result)

	t.Run("threshold", func(t *testing.T) {
		// medium has only CVE-2021-44832 (MEDIUM) among its added findings.
		rep, err := s.Scan(ctx, scan.Request{Image: f.medium, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
		if err != nil || !rep.Passed() {
			t.Fatalf("Scan(medium, HIGH) = %v (passed %v), want a pass", err, rep != nil && rep.Passed())
		}
		if got, want := essentials(rep.Findings), []scan.Finding{musl, medium(mediumJar, "2.17.0")}; !slices.Equal(got, want) {
			t.Errorf("Findings = %s, want %s", fmtFindings(got), fmtFindings(want))
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.medium, Base: f.base, Policy: scan.Policy{Threshold: scan.Medium}})
		if !errors.As(err, &gate) || len(gate.Failed) != 1 || gate.Failed[0].ID != "CVE-2021-44832" {
			t.Fatalf("Scan(medium, MEDIUM) = %v, want a GateError on CVE-2021-44832", err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.Critical}})
		if !errors.As(err, &gate) || len(gate.Failed) != 2 {
			t.Fatalf("Scan(log4shell, CRITICAL) = %v, want a GateError on the two CRITICAL findings", err)
		}
	})

	t.Run("scope", func(t *testing.T) {
		// The base's musl finding (HIGH) fails the gate only in scope "all".
		_, err := s.Scan(ctx, scan.Request{Image: f.medium, Base: f.base, Policy: scan.Policy{Threshold: scan.High, Scope: scan.ScopeAll}})
		if !errors.As(err, &gate) || len(gate.Failed) != 1 || essentials(gate.Failed)[0] != musl || gate.Scope != scan.ScopeAll {
			t.Fatalf("Scan(medium, HIGH, all) = %v, want a GateError on the base's musl finding", err)
		}
		if !strings.Contains(err.Error(), "1 finding in the image at or above HIGH:") || !strings.Contains(err.Error(), "CVE-2025-26519 musl 1.2.5-r0 → 1.2.5-r1 HIGH (base)") {
			t.Errorf("error = %q", err)
		}
		// The base image itself: everything is of origin base, so scope added passes.
		rep, err := s.Scan(ctx, scan.Request{Image: f.base, Base: f.base, Policy: scan.Policy{Threshold: scan.Unknown}})
		if err != nil || len(rep.Findings) != 1 || rep.Findings[0].Origin != scan.OriginBase {
			t.Fatalf("Scan(base, UNKNOWN, added) = %v, %v; want a pass with one base finding", rep, err)
		}
		writeFixture(t, "base.json", rep.Result)
	})

	t.Run("base scanned once", func(t *testing.T) {
		if n := strings.Count(log.String(), "scan: base "+f.base+": "); n != 1 {
			t.Errorf("the base was scanned %d times by one Scanner, want once; log:\n%s", n, log.String())
		}
	})
}

func TestScanIgnoreFile(t *testing.T) {
	f := newFixture(t)
	s := f.scanner(t, io.Discard)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	future := time.Now().AddDate(1, 0, 0).Format(time.DateOnly)
	past := time.Now().AddDate(0, 0, -1).Format(time.DateOnly)

	t.Run("ignored", func(t *testing.T) {
		ignore := write("all.yaml", fmt.Sprintf(`vulnerabilities:
  - id: CVE-2021-44228
    statement: mitigated by log4j2.formatMsgNoLookups (WSO2-2021-1496)
    expired_at: %s
`, future))
		rep, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High, IgnoreFile: ignore}})
		if err != nil {
			t.Fatalf("Scan with CVE-2021-44228 ignored = %v, want a pass", err)
		}
		if len(rep.Ignored) != 2 {
			t.Fatalf("Ignored = %s, want the two CVE-2021-44228 findings", fmtFindings(rep.Ignored))
		}
		for _, fd := range rep.Ignored {
			if fd.ID != "CVE-2021-44228" || fd.Statement != "mitigated by log4j2.formatMsgNoLookups (WSO2-2021-1496)" || fd.Origin != scan.OriginInputs || fd.Severity != scan.Critical {
				t.Errorf("ignored finding %+v", fd)
			}
		}
		for _, fd := range rep.Findings {
			if fd.ID == "CVE-2021-44228" {
				t.Errorf("an ignored finding is still among Findings: %+v", fd)
			}
		}
	})

	t.Run("by path and purl", func(t *testing.T) {
		// Only the jar in lib/ is ignored; the dropin copy still fails the gate.
		ignore := filepath.Join("testdata", "lib.trivyignore.yaml")
		rep, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High, IgnoreFile: ignore}})
		var gate *scan.GateError
		if !errors.As(err, &gate) || len(gate.Failed) != 1 || gate.Failed[0].Path != dropinJar {
			t.Fatalf("Scan = %v, want a GateError on the dropin jar only", err)
		}
		if len(rep.Ignored) != 1 || rep.Ignored[0].Path != libJar || rep.Ignored[0].Statement != "lib/ is not on the classpath of this profile" {
			t.Errorf("Ignored = %s, want the lib jar's finding with its statement", fmtFindings(rep.Ignored))
		}
		writeFixture(t, "log4shell-ignored.json", rep.Result)
	})

	t.Run("expired", func(t *testing.T) {
		ignore := write("expired.yaml", fmt.Sprintf(`vulnerabilities:
  - id: CVE-2021-44228
    statement: until the 2.17 update
    expired_at: %s
`, past))
		rep, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High, IgnoreFile: ignore}})
		var gate *scan.GateError
		if !errors.As(err, &gate) || len(gate.Failed) != 2 {
			t.Fatalf("Scan with an expired ignore entry = %v, want a GateError on both findings", err)
		}
		if len(rep.Ignored) != 0 || len(rep.ExpiredIgnores) != 1 || rep.ExpiredIgnores[0].ID != "CVE-2021-44228" {
			t.Errorf("Ignored = %v, ExpiredIgnores = %+v; want none ignored, the entry listed as expired", rep.Ignored, rep.ExpiredIgnores)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		_, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{IgnoreFile: filepath.Join(dir, "nope.yaml")}})
		if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
			t.Fatalf("Scan with a missing ignore file = %v, want an error naming it", err)
		}
	})

	t.Run("working directory is not read", func(t *testing.T) {
		// Trivy would apply a .trivyignore or trivy.yaml from its working directory; the
		// Scanner runs it elsewhere, so these change nothing.
		wd := t.TempDir()
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(wd, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write(".trivyignore", "CVE-2021-44228\n")
		write(".trivyignore.yaml", "vulnerabilities:\n  - id: CVE-2021-44228\n")
		write("trivy.yaml", "severity: [LOW]\nscan:\n  skip-files: ['**/*.jar']\n")
		t.Chdir(wd)
		t.Setenv("TRIVY_SKIP_FILES", "**/*.jar")
		t.Setenv("TRIVY_IGNOREFILE", filepath.Join(wd, ".trivyignore"))
		_, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
		var gate *scan.GateError
		if !errors.As(err, &gate) || len(gate.Failed) != 2 {
			t.Fatalf("Scan = %v, want a GateError on both findings despite the working directory's files and TRIVY_* variables", err)
		}
	})
}

// TestScanServer scans in client mode against a real `trivy server` on loopback that
// holds the DB: the client's cache has only the Java DB, the token goes through the
// environment, and the report names the server's DB.
func TestScanServer(t *testing.T) {
	f := newFixture(t)
	trivy, err := testenv.Bin("trivy")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	logFile := filepath.Join(t.TempDir(), "server.log")
	logw, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logw.Close()
	srv := exec.Command(trivy, "server", "--listen", addr, "--cache-dir", f.cache, "--skip-db-update", "--token", "s3cret")
	srv.Stdout, srv.Stderr = logw, logw
	srv.Env = append(os.Environ(), "HTTPS_PROXY="+f.proxy.url, "HTTP_PROXY="+f.proxy.url, "NO_PROXY=")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { srv.Wait(); close(exited) }()
	t.Cleanup(func() {
		srv.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("trivy server exited; its log:\n%s", testenv.Tail(logFile, 20))
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("trivy server on %s did not answer /healthz; its log:\n%s", addr, testenv.Tail(logFile, 20))
		}
		time.Sleep(100 * time.Millisecond)
	}

	client := t.TempDir()
	if err := trivydb.Write(client, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(client, "db")); err != nil { // the DB is the server's
		t.Fatal(err)
	}
	newScanner := func(token string) *scan.Scanner {
		s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: client, Offline: true, Server: "http://" + addr, ServerToken: token,
			Env: []string{"HTTPS_PROXY=" + f.proxy.url, "HTTP_PROXY=" + f.proxy.url, "NO_PROXY="}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	rep, err := newScanner("s3cret").Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
	var gate *scan.GateError
	if !errors.As(err, &gate) || len(gate.Failed) != 2 {
		t.Fatalf("Scan against the server = %v, want the GateError on the two log4j-core jars; server log:\n%s", err, testenv.Tail(logFile, 20))
	}
	if !rep.DB.UpdatedAt.Equal(f.dbAt) || rep.Scanner.Server != "http://"+addr || rep.Scanner.Version != "0.74.0" {
		t.Errorf("report DB %+v, scanner %+v; want the server's DB (updated %s)", rep.DB, rep.Scanner, f.dbAt)
	}
	_, err = newScanner("wrong").Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
	if err == nil || isGate(err) {
		t.Fatalf("Scan with a wrong server token = %v, want Trivy's failure", err)
	}
	t.Log(err)
	if reqs := f.proxy.requests(); len(reqs) > 0 {
		t.Errorf("the server or client reached for the network: %q", reqs)
	}
}

// TestScanInsecure: Trivy reaches a plain-HTTP registry that go-containerregistry does
// not treat as local (127.0.0.2 is loopback, but only 127.0.0.1, localhost and ::1 get
// plain HTTP by default) only with --insecure (Options.Insecure).
func TestScanInsecure(t *testing.T) {
	testenv.Need(t, "trivy")
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	f := &fixture{}
	f.populate(t, l.Addr().String())
	ctx := context.Background()
	req := scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.High}}

	_, err = f.scanner(t, io.Discard).Scan(ctx, req)
	if err == nil || isGate(err) || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		t.Fatalf("Scan of a plain-HTTP registry on 127.0.0.2 without Insecure = %v, want Trivy's HTTPS failure", err)
	}
	t.Log(err)
	trivy, err := testenv.Bin("trivy")
	if err != nil {
		t.Fatal(err)
	}
	s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: f.cache, Offline: true, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Scan(ctx, req)
	var gate *scan.GateError
	if !errors.As(err, &gate) || len(gate.Failed) != 2 {
		t.Fatalf("Scan with Insecure = %v, want the GateError on the two log4j-core jars", err)
	}
}

// TestScanCredentials: Trivy takes registry credentials from the docker config named by
// DOCKER_CONFIG, which the Scanner passes through.
func TestScanCredentials(t *testing.T) {
	f := newFixture(t, testenv.WithBasicAuth("ci", "s3cret"))
	ctx := context.Background()
	rep, err := f.scanner(t, io.Discard).Scan(ctx, scan.Request{Image: f.medium, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
	if err != nil || len(rep.Findings) != 2 {
		t.Fatalf("Scan with credentials in DOCKER_CONFIG = %v, %v; want a pass with two findings", rep, err)
	}
	// Without them (an empty docker config) the registry refuses, and the gate fails closed.
	s := f.scanner(t, io.Discard, "DOCKER_CONFIG="+t.TempDir())
	_, err = s.Scan(ctx, scan.Request{Image: f.medium, Base: f.base, Policy: scan.Policy{Threshold: scan.High}})
	var gate *scan.GateError
	if err == nil || errors.As(err, &gate) || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("Scan without credentials = %v, want Trivy's failure quoting UNAUTHORIZED", err)
	}
	t.Log(err)
}

func TestScanFailsClosed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	trivy, err := testenv.Bin("trivy")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tag", func(t *testing.T) {
		s := f.scanner(t, io.Discard)
		tag := f.reg.Host + "/acme/wso2is:log4shell"
		_, err := s.Scan(ctx, scan.Request{Image: tag, Base: f.base})
		if err == nil || !strings.Contains(err.Error(), tag) || !strings.Contains(err.Error(), "is a tag, not a digest") {
			t.Fatalf("Scan(tag) = %v, want a refusal naming the tag", err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.reg.Host + "/wso2/wso2is-base:5.8.0"})
		if err == nil || !strings.Contains(err.Error(), "base image") || !strings.Contains(err.Error(), "is a tag") {
			t.Fatalf("Scan(base by tag) = %v, want a refusal", err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell})
		if err == nil || !strings.Contains(err.Error(), "no base image") {
			t.Fatalf("Scan(no base) = %v, want a refusal", err)
		}
	})

	t.Run("no trivy", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "trivy")
		_, err := scan.New(scan.Options{Trivy: missing})
		if !errors.Is(err, scan.ErrTrivyNotFound) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("New(missing trivy) = %v, want ErrTrivyNotFound naming %s", err, missing)
		}
		t.Setenv("PATH", t.TempDir())
		if _, err := scan.New(scan.Options{}); !errors.Is(err, scan.ErrTrivyNotFound) || !strings.Contains(err.Error(), "make tools") {
			t.Fatalf("New() with no trivy around = %v, want ErrTrivyNotFound with a hint", err)
		}
	})

	t.Run("no DB", func(t *testing.T) {
		empty := t.TempDir()
		s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: empty, Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.Critical}})
		if rep != nil || !errors.Is(err, scan.ErrNoDB) {
			t.Fatalf("Scan with no DB = %v, %v; want ErrNoDB", rep, err)
		}
		t.Log(err)
		for _, want := range []string{"--skip-db-update cannot be specified on the first run", empty, "ghcr.io/aquasecurity/trivy-db", "trivy-java-db", "DB repository", "--download-db-only"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not contain %q:\n%v", want, err)
			}
		}
	})

	t.Run("online without network", func(t *testing.T) {
		// Not offline, with an empty cache: Trivy goes for its DB, through the proxy the
		// fixture sets (so nothing leaves the machine), and fails closed. This is also
		// what proves the proxy sees what Trivy would fetch: offline scans leave it idle.
		proxy := startProxy(t)
		cache := t.TempDir()
		s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: cache, Timeout: 2 * time.Minute,
			Env: []string{"HTTPS_PROXY=" + proxy.url, "HTTP_PROXY=" + proxy.url, "https_proxy=" + proxy.url, "http_proxy=" + proxy.url, "NO_PROXY=", "no_proxy="}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.Critical}})
		if !errors.Is(err, scan.ErrNoDB) || !strings.Contains(err.Error(), "downloading them failed") {
			t.Fatalf("Scan with no DB and no network = %v, want ErrNoDB", err)
		}
		t.Log(err)
		reqs := strings.Join(proxy.requests(), "\n")
		if !strings.Contains(reqs, "CONNECT mirror.gcr.io:443") && !strings.Contains(reqs, "CONNECT ghcr.io:443") {
			t.Errorf("the proxy saw %q, want Trivy's attempt to fetch its DB", reqs)
		}
	})

	t.Run("no Java DB", func(t *testing.T) {
		cache := t.TempDir()
		if err := trivydb.Write(cache, dbAdvisories, dbVulns); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(cache, "java-db")); err != nil {
			t.Fatal(err)
		}
		s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: cache, Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base, Policy: scan.Policy{Threshold: scan.Critical}})
		if !errors.Is(err, scan.ErrNoDB) || !strings.Contains(err.Error(), "--skip-java-db-update") {
			t.Fatalf("Scan with no Java DB = %v, want ErrNoDB quoting Trivy", err)
		}
		t.Log(err)
	})

	t.Run("timeout", func(t *testing.T) {
		s, err := scan.New(scan.Options{Trivy: trivy, CacheDir: f.cache, Offline: true, Timeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Scan(ctx, scan.Request{Image: f.log4shell, Base: f.base})
		if err == nil || !strings.Contains(err.Error(), "did not finish within 1ms") {
			t.Fatalf("Scan with a 1 ms timeout = %v, want a timeout error", err)
		}
	})
}

// checkPredicate checks the attestation predicate against cosign's struct.
func checkPredicate(t *testing.T, rep *scan.Report) {
	t.Helper()
	data, err := rep.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Invocation struct {
			Parameters []string `json:"parameters"`
			URI        string   `json:"uri"`
			EventID    string   `json:"event_id"`
			BuilderID  string   `json:"builder.id"`
		} `json:"invocation"`
		Scanner struct {
			URI     string `json:"uri"`
			Version string `json:"version"`
			DB      struct {
				URI     string `json:"uri"`
				Version string `json:"version"`
			} `json:"db"`
			Result json.RawMessage `json:"result"`
		} `json:"scanner"`
		Metadata struct {
			ScanStartedOn  time.Time `json:"scanStartedOn"`
			ScanFinishedOn time.Time `json:"scanFinishedOn"`
		} `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("predicate %s: %v", data, err)
	}
	var result struct {
		SchemaVersion int
		ArtifactName  string
		Results       []json.RawMessage
	}
	if err := json.Unmarshal(p.Scanner.Result, &result); err != nil {
		t.Fatalf("the predicate's result: %v", err)
	}
	if p.Scanner.URI != rep.Scanner.URI || p.Scanner.Version != "0.74.0" || p.Scanner.DB.URI != scan.DefaultDBRepository ||
		p.Scanner.DB.Version != rep.DB.UpdatedAt.Format(time.RFC3339) || result.SchemaVersion != 2 ||
		result.ArtifactName != rep.Image || len(result.Results) == 0 ||
		!p.Metadata.ScanStartedOn.Equal(rep.StartedAt) || !p.Metadata.ScanFinishedOn.Equal(rep.FinishedAt) ||
		!slices.Contains(p.Invocation.Parameters, "--offline-scan") || p.Invocation.Parameters[len(p.Invocation.Parameters)-1] != rep.Image ||
		slices.Contains(p.Invocation.Parameters, "--output") || slices.Contains(p.Invocation.Parameters, "--cache-dir") {
		t.Errorf("predicate = %+v", p)
	}
}

// essentials keeps the fields a test can predict.
func essentials(fs []scan.Finding) []scan.Finding {
	out := make([]scan.Finding, len(fs))
	for i, f := range fs {
		out[i] = scan.Finding{ID: f.ID, Package: f.Package, Path: f.Path, InstalledVersion: f.InstalledVersion,
			FixedVersion: f.FixedVersion, Severity: f.Severity, Title: f.Title, Origin: f.Origin}
	}
	return out
}

func fmtFindings(fs []scan.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %q\n", f, f.Title)
	}
	return b.String()
}

// baseImage is the busybox stand-in of the WSO2 IS image plus Alpine 3.20's release file
// and apk database, with musl 1.2.5-r0 (vulnerable) and busybox (not).
func baseImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := standin.Image(standin.Options{Product: "wso2is", Version: "5.8.0"}, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	return appendLayer(t, img, trivydb.Musl.Files)
}

// appendLayer adds one layer holding files (paths relative to /, parents created, owned
// by 802:802 like WSO2's additions).
func appendLayer(t *testing.T, img v1.Image, files map[string][]byte) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	mtime := time.Unix(1565855673, 0)
	for _, p := range paths {
		for d := filepath.Dir(p); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	dirList := make([]string, 0, len(dirs))
	for d := range dirs {
		dirList = append(dirList, d)
	}
	slices.Sort(dirList)
	for _, d := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, Uid: 802, Gid: 802, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(files[p])), Uid: 802, Gid: 802, ModTime: mtime}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{CreatedBy: "wso2img test layer", Created: v1.Time{Time: mtime}}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jar is a log4j-core jar at version.
func jar(t *testing.T, version string) []byte {
	t.Helper()
	data, err := trivydb.MavenJar("org.apache.logging.log4j", "log4j-core", version)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// push pushes img to ref and returns "repository@digest".
func push(t *testing.T, ref string, img v1.Image) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := standin.Push(ctx, ref, img, true)
	if err != nil {
		t.Fatal(err)
	}
	return ref[:strings.LastIndex(ref, ":")] + "@" + d
}

// dockerConfig writes a docker config with the registry's credentials and returns its
// directory.
func dockerConfig(t *testing.T, reg *testenv.Registry) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// recordingProxy is an HTTP proxy on loopback that refuses every request and records
// what was asked for: set as HTTP(S)_PROXY, it catches any request for a non-loopback
// host (Go never proxies loopback addresses).
type recordingProxy struct {
	url string
	mu  sync.Mutex
	log []string
}

func startProxy(t *testing.T) *recordingProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProxy{url: "http://" + l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, _ := readLine(c)
				p.mu.Lock()
				p.log = append(p.log, line)
				p.mu.Unlock()
				io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return p
}

func (p *recordingProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// readLine reads the request line of a proxied request.
func readLine(c net.Conn) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 4096 {
		if _, err := c.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			break
		}
		b = append(b, one[0])
	}
	return strings.TrimRight(string(b), "\r"), nil
}

// syncBuffer is a bytes.Buffer safe for the Scanner's log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
