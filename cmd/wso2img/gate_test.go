package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/internal/standin"
	"github.com/wso2img/wso2img/internal/testenv"
	"github.com/wso2img/wso2img/internal/trivydb"
	"github.com/wso2img/wso2img/scan"
)

// gateResult is the scan part of one element of `build --json`.
type gateResult struct {
	buildResult
	Scan []struct {
		Platform string
		Failed   []scan.Finding
		Ignored  []scan.Finding
		Findings []scan.Finding
	} `json:"scan"`
}

// TestVulnerabilityGate runs the real Trivy, offline, on what wso2img pushes: a jar of a
// vulnerable log4j-core is refused (exit 5, nothing signed, nothing tagged, the image
// there by digest only), the report names each finding and its origin; an ignore entry
// lets it through and an expired one does not; the base's own finding does not count in
// scope "added" but does in scope "all"; the fixed jar passes, is signed, tagged and
// carries a vulnerability attestation that wso2img verify and the stock cosign CLIs
// accept.
func TestVulnerabilityGate(t *testing.T) {
	reg, bk := needBuildkit(t)
	testenv.Need(t, "trivy", "cosign-v2", "cosign-v3")
	trivy, _ := testenv.Bin("trivy")
	w := newWorld(t, reg)
	o := standin.Options{Product: "wso2is", Version: "5.8.0", Ports: []int{4000, 9763, 9443}, Created: time.UnixMilli(1565855673150), Extra: trivydb.Musl.Files}
	img, err := standin.Image(o, v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := standin.Push(context.Background(), w.prefix+"/wso2is:5.8.0.1565855673150-alpine3.10", img, true); err != nil {
		t.Fatal(err)
	}
	db := t.TempDir()
	if err := trivydb.Write(db, append(trivydb.Log4Shell.Advisories, trivydb.Musl.Advisories...), append(trivydb.Log4Shell.Vulnerabilities, trivydb.Musl.Vulnerabilities...)); err != nil {
		t.Fatal(err)
	}
	key, pub := signtest.Keys(t)
	t.Setenv("COSIGN_PASSWORD", signtest.Password)

	jar := func(version string) (string, string) {
		b, err := trivydb.MavenJar("org.apache.logging.log4j", "log4j-core", version)
		if err != nil {
			t.Fatal(err)
		}
		return w.vendor.serve(t, "/maven2/log4j-core-"+version+".jar", b, "")
	}
	badURL, badSum := jar("2.14.1")
	goodURL, goodSum := jar("2.17.1")
	profile := func(url, sum, scanYAML string) string {
		return w.profile("p.yaml", fmt.Sprintf("extends: wso2is-5.8.0-alpine\nupdate: {wum: 1565855673150}\n%sinputs:\n  - url: %s\n    sha256: \"%s\"\n    dest: repository/components/lib/\n", scanYAML, url, sum))
	}
	run := func(target, file string) (result, []gateResult) {
		t.Helper()
		r := runCLI(t, append([]string{"build", "--json", "--progress", "quiet", "--buildkit-host", bk.Addr, "--registry", w.prefix + "/" + target,
			"--trivy", trivy, "--scan-db", db, "--key", key, "--tlog-upload=false"}, append(w.flags(), file)...)...)
		var out []gateResult
		if strings.TrimSpace(r.stdout) != "" {
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("build --json: %v\n%s", err, r.stdout)
			}
		}
		return r, out
	}
	lib := "home/wso2carbon/wso2is-5.8.0/repository/components/lib/log4j-core-2.14.1.jar"

	// Refused: exit 5, the finding named, nothing signed or tagged, the digest there.
	r, out := run("refused", profile(badURL, badSum, ""))
	if r.code != exitGate {
		t.Fatalf("a vulnerable jar: exit %d, want %d\n%s", r.code, exitGate, r.stderr)
	}
	for _, want := range []string{"CVE-2021-44228", "org.apache.logging.log4j:log4j-core", "2.14.1 → 2.15.0", lib, "CRITICAL", "(inputs)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.stderr)
		}
	}
	if len(out) != 1 || len(out[0].Tags) != 0 || out[0].Signed || !out[0].Pushed || len(out[0].Scan) != 1 || len(out[0].Scan[0].Failed) != 1 ||
		out[0].Scan[0].Failed[0].Origin != scan.OriginInputs {
		t.Fatalf("refused result %+v", out)
	}
	refusedRepo := w.prefix + "/refused/wso2is"
	if names, _ := listTags(refusedRepo); len(names) != 0 {
		t.Errorf("tags after a refusal: %v (no signature, no tag may be written)", names)
	}
	if d, _ := remoteDigest(t, refusedRepo+"@"+out[0].Digest); d != out[0].Digest {
		t.Errorf("the refused image is not in the registry by digest")
	}
	// The base's musl finding (HIGH, origin base) is there, and does not count.
	base := false
	for _, f := range out[0].Scan[0].Findings {
		base = base || (f.ID == "CVE-2025-26519" && f.Origin == scan.OriginBase)
	}
	if !base {
		t.Errorf("the base's planted musl finding is not in the report: %+v", out[0].Scan[0].Findings)
	}

	// An ignore entry lets it through; it is reported as ignored.
	w.file(".trivyignore.yaml", "vulnerabilities:\n  - id: CVE-2021-44228\n    statement: not reachable in this deployment\n", 0o644)
	r, out = run("ignored", profile(badURL, badSum, "scan: {ignore: .trivyignore.yaml}\n"))
	if r.code != 0 || len(out) != 1 || len(out[0].Tags) != 2 || len(out[0].Scan[0].Ignored) != 1 {
		t.Fatalf("with the finding ignored: exit %d %+v\n%s", r.code, out, r.stderr)
	}
	// An expired one does not.
	w.file(".trivyignore.yaml", "vulnerabilities:\n  - id: CVE-2021-44228\n    expired_at: 2024-01-01\n    statement: was not reachable\n", 0o644)
	if r, _ = run("expired", profile(badURL, badSum, "scan: {ignore: .trivyignore.yaml}\n")); r.code != exitGate {
		t.Errorf("with an expired ignore entry: exit %d, want %d\n%s", r.code, exitGate, r.stderr)
	}

	// The fixed jar: scope added passes despite the base's HIGH musl; scope all does not.
	if r, _ = run("all", profile(goodURL, goodSum, "scan: {scope: all}\n")); r.code != exitGate || !strings.Contains(r.stderr, "CVE-2025-26519") || !strings.Contains(r.stderr, "(base)") {
		t.Errorf("scope all with the base's musl: exit %d\n%s", r.code, r.stderr)
	}
	file := profile(goodURL, goodSum, "")
	r, out = run("fixed", file)
	if r.code != 0 || len(out) != 1 || len(out[0].Tags) != 2 || !out[0].Signed {
		t.Fatalf("the fixed jar: exit %d %+v\n%s", r.code, out, r.stderr)
	}
	ref := w.prefix + "/fixed/wso2is@" + out[0].Digest

	// The vulnerability attestation verifies with wso2img and the stock cosign CLIs.
	v := runCLI(t, "verify", "--insecure-registry", reg.Host, "--key", pub, "--insecure-ignore-tlog", "--require-vuln-scan", "--max-scan-age", "1h", ref)
	if v.code != 0 || !strings.Contains(v.stdout, "vulnerability scan") {
		t.Errorf("verify --require-vuln-scan: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	if v := runCLI(t, "verify", "--insecure-registry", reg.Host, "--key", pub, "--insecure-ignore-tlog", "--require-vuln-scan", "--max-scan-severity", "HIGH", ref); v.code != exitPolicy {
		t.Errorf("verify --max-scan-severity HIGH of an image whose base has a HIGH finding: exit %d, want %d\n%s", v.code, exitPolicy, v.stdout)
	}
	// watch: the unchanged image is due for a rescan once its scan is old, or when
	// today's DB refuses it; build --if-changed then scans and attests it again.
	watchArgs := append([]string{"watch", "--json", "--registry", w.prefix + "/fixed", "--trivy", trivy, "--scan-db", db}, w.flags()...)
	if st := watchOne(t, append(watchArgs, "--rescan-after", "1h", file)...); st.Due {
		t.Errorf("freshly scanned, due anyway: %v", st.Reasons)
	}
	time.Sleep(1100 * time.Millisecond)
	if st := watchOne(t, append(watchArgs, "--rescan-after", "1s", file)...); !st.Due || !strings.Contains(strings.Join(st.Reasons, " "), "rescan: ") {
		t.Errorf("scanned more than 1s ago, not due for a rescan: %+v", st)
	}
	r, out = run("fixed", file) // the same image: nothing pushed, a new scan attested
	if r.code != 0 || out[0].Pushed {
		t.Errorf("rebuilding the unchanged image: exit %d %+v", r.code, out)
	}
	newDB := t.TempDir()
	later := trivydb.Advisory{Bucket: trivydb.BucketMavenGHSA, Package: "org.apache.logging.log4j:log4j-core", VulnerabilityID: "CVE-2099-0001",
		VulnerableVersions: []string{"< 2.99.0"}, PatchedVersions: []string{"2.99.0"}}
	if err := trivydb.Write(newDB, append(append(trivydb.Log4Shell.Advisories, trivydb.Musl.Advisories...), later),
		append(append(trivydb.Log4Shell.Vulnerabilities, trivydb.Musl.Vulnerabilities...), trivydb.Vulnerability{ID: "CVE-2099-0001", Title: "found after the build", Severity: "CRITICAL"})); err != nil {
		t.Fatal(err)
	}
	newArgs := append([]string{"watch", "--json", "--registry", w.prefix + "/fixed", "--trivy", trivy, "--scan-db", newDB}, w.flags()...)
	if st := watchOne(t, append(newArgs, "--rescan", file)...); !st.Due || !strings.Contains(strings.Join(st.Reasons, " "), "CVE-2099-0001") {
		t.Errorf("today's DB refuses the image, but it is not due: %+v", st)
	}
	for _, bin := range []string{"cosign-v2", "cosign-v3"} {
		if out, err := stockCosign(t, bin, "verify-attestation", "--type", "vuln", "--key", pub, "--insecure-ignore-tlog=true",
			"--allow-insecure-registry=true", "--allow-http-registry=true", ref); err != nil {
			t.Errorf("%s verify-attestation --type vuln: %v\n%s", bin, err, out)
		}
	}
}

// remoteDigest is the digest a reference names in the test registry.
func remoteDigest(t *testing.T, ref string) (string, error) {
	t.Helper()
	_, desc := remoteImage(t, ref)
	return desc.Digest.String(), nil
}

// watchOne runs watch --json on one profile and returns its status.
func watchOne(t *testing.T, args ...string) watchStatus {
	t.Helper()
	r := runCLI(t, args...)
	var st []watchStatus
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || len(st) != 1 {
		t.Fatalf("watch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return st[0]
}

type watchStatus struct {
	Due     bool     `json:"due"`
	Reasons []string `json:"reasons"`
}
