package scan_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign/attestation"

	"github.com/wso2img/wso2img/scan"
)

// TestPredicateIsCosignVuln: the predicate decodes into cosign's CosignVulnPredicate with
// no field left over, and `cosign attest --type vuln` (attestation.GenerateStatement)
// keeps it unchanged, with the predicate type the gate exports.
func TestPredicateIsCosignVuln(t *testing.T) {
	result := []byte(`{"SchemaVersion":2,"ArtifactName":"r@sha256:00","Results":[{"Target":"Java","Vulnerabilities":[{"VulnerabilityID":"CVE-2021-44228","PkgName":"x","Severity":"CRITICAL"}]}]}`)
	started := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	rep := &scan.Report{
		Image:      "r@sha256:00",
		Scanner:    scan.ScannerInfo{Name: "trivy", Version: "0.74.0", URI: "pkg:github/aquasecurity/trivy@0.74.0"},
		DB:         scan.DBInfo{URI: "mirror.acme.com/trivy-db:2", UpdatedAt: time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)},
		StartedAt:  started,
		FinishedAt: started.Add(7 * time.Second),
		Invocation: scan.Invocation{Parameters: []string{"image", "--format", "json"}, URI: "https://ci.acme.com/run/42", EventID: "42", BuilderID: "wso2img"},
		Result:     result,
	}
	data, err := rep.Predicate()
	if err != nil {
		t.Fatal(err)
	}
	var p attestation.CosignVulnPredicate
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("cosign's CosignVulnPredicate cannot hold the predicate: %v\n%s", err, data)
	}
	want := attestation.CosignVulnPredicate{
		Invocation: attestation.Invocation{Parameters: []any{"image", "--format", "json"}, URI: "https://ci.acme.com/run/42", EventID: "42", BuilderID: "wso2img"},
		Scanner: attestation.Scanner{
			URI: "pkg:github/aquasecurity/trivy@0.74.0", Version: "0.74.0",
			DB:     attestation.DB{URI: "mirror.acme.com/trivy-db:2", Version: "2026-11-30T06:00:00Z"},
			Result: decode(t, result),
		},
		Metadata: attestation.Metadata{ScanStartedOn: started, ScanFinishedOn: started.Add(7 * time.Second)},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("predicate =\n%+v\nwant\n%+v", p, want)
	}

	st, err := attestation.GenerateStatement(attestation.GenerateOpts{Predicate: bytes.NewReader(data), Type: "vuln", Digest: "00", Repo: "r"})
	if err != nil {
		t.Fatal(err)
	}
	stJSON, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var generated struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(stJSON, &generated); err != nil {
		t.Fatal(err)
	}
	if scan.PredicateType != attestation.CosignVulnProvenanceV01 || generated.PredicateType != scan.PredicateType {
		t.Errorf("cosign's predicate type %q, scan.PredicateType %q", generated.PredicateType, scan.PredicateType)
	}
	if !reflect.DeepEqual(decode(t, generated.Predicate), decode(t, data)) {
		t.Errorf("cosign rewrote the predicate:\n%s\nfrom\n%s", generated.Predicate, data)
	}

	if _, err := (&scan.Report{Image: "r@sha256:00"}).Predicate(); err == nil || !strings.Contains(err.Error(), "no Trivy result") {
		t.Errorf("Predicate of a report without a result = %v, want an error", err)
	}
}

func decode(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReportJSON: the report a command prints with --json names severities by name.
func TestReportJSON(t *testing.T) {
	rep := scan.Report{Image: "r@sha256:00", Threshold: scan.High, Scope: scan.ScopeAdded,
		Failed: []scan.Finding{{ID: "CVE-1", Package: "p", InstalledVersion: "1", Severity: scan.Critical, Origin: scan.OriginInputs}}}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"threshold":"HIGH"`, `"scope":"added"`, `"severity":"CRITICAL"`, `"origin":"inputs"`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("%s lacks %s", data, want)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestEvaluate judges real Trivy reports (testdata/, written by the end-to-end tests with
// -update): the image with log4j-core 2.14.1 twice over a base whose musl is vulnerable.
func TestEvaluate(t *testing.T) {
	const (
		lib    = "home/wso2carbon/wso2is-5.8.0/repository/components/lib/log4j-core-2.14.1.jar"
		dropin = "home/wso2carbon/wso2is-5.8.0/repository/components/dropins/log4j_core_2.14.1.wso2v1.jar"
	)
	base := readFixture(t, "base.json")
	type failed struct{ id, path string }
	tests := []struct {
		name    string
		image   string
		policy  scan.Policy
		failed  []failed
		ignored []failed
	}{
		{"critical added", "log4shell.json", scan.Policy{Threshold: scan.Critical},
			[]failed{{"CVE-2021-44228", dropin}, {"CVE-2021-44228", lib}}, nil},
		{"high added: the base's musl does not count", "log4shell.json", scan.Policy{Threshold: scan.High},
			[]failed{{"CVE-2021-44228", dropin}, {"CVE-2021-44228", lib}}, nil},
		{"high all: it does", "log4shell.json", scan.Policy{Threshold: scan.High, Scope: scan.ScopeAll},
			[]failed{{"CVE-2021-44228", dropin}, {"CVE-2021-44228", lib}, {"CVE-2025-26519", ""}}, nil},
		{"medium added", "log4shell.json", scan.Policy{Threshold: scan.Medium},
			[]failed{{"CVE-2021-44228", dropin}, {"CVE-2021-44228", lib}, {"CVE-2021-44832", dropin}, {"CVE-2021-44832", lib}}, nil},
		{"base alone passes in scope added", "base.json", scan.Policy{Threshold: scan.Unknown}, nil, nil},
		{"base alone fails in scope all", "base.json", scan.Policy{Threshold: scan.Unknown, Scope: scan.ScopeAll}, []failed{{"CVE-2025-26519", ""}}, nil},
		{"ignored by path", "log4shell-ignored.json", scan.Policy{Threshold: scan.High, IgnoreFile: filepath.Join("testdata", "lib.trivyignore.yaml")},
			[]failed{{"CVE-2021-44228", dropin}}, []failed{{"CVE-2021-44228", lib}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := scan.Evaluate(readFixture(t, tt.image), base, tt.policy)
			var gate *scan.GateError
			if err != nil && !errors.As(err, &gate) {
				t.Fatal(err)
			}
			if (gate != nil) != (len(tt.failed) > 0) || rep.Passed() != (len(tt.failed) == 0) {
				t.Fatalf("Evaluate = %v (passed %v), want %d failed", err, rep.Passed(), len(tt.failed))
			}
			var got, gotIgnored []failed
			for _, f := range rep.Failed {
				got = append(got, failed{f.ID, f.Path})
			}
			for _, f := range rep.Ignored {
				gotIgnored = append(gotIgnored, failed{f.ID, f.Path})
			}
			if !reflect.DeepEqual(got, tt.failed) || !reflect.DeepEqual(gotIgnored, tt.ignored) {
				t.Errorf("failed %v, ignored %v; want %v, %v", got, gotIgnored, tt.failed, tt.ignored)
			}
			for _, f := range rep.Findings {
				wantOrigin := scan.OriginInputs
				if f.Package == "musl" {
					wantOrigin = scan.OriginBase
				}
				if f.Origin != wantOrigin {
					t.Errorf("%s in %s has origin %q, want %q", f.ID, f.Package, f.Origin, wantOrigin)
				}
			}
			if gate != nil && (gate.Threshold != tt.policy.Threshold || len(gate.Failed) != len(tt.failed)) {
				t.Errorf("GateError = %+v", gate)
			}
		})
	}
}

func TestEvaluateRejects(t *testing.T) {
	base := readFixture(t, "base.json")
	image := readFixture(t, "log4shell-ignored.json")
	tests := []struct {
		name        string
		image, base []byte
		policy      scan.Policy
		want        string
	}{
		{"not JSON", []byte("FATAL error"), base, scan.Policy{}, "parsing Trivy's JSON report"},
		{"schema 1", []byte(`{"SchemaVersion":1}`), base, scan.Policy{}, "SchemaVersion 1"},
		{"bad base", image, []byte(`[]`), scan.Policy{}, "base image's report"},
		{"vulnerability without ID", []byte(`{"SchemaVersion":2,"Results":[{"Target":"Java","Vulnerabilities":[{"PkgName":"x"}]}]}`), base, scan.Policy{}, "no VulnerabilityID"},
		{"bad scope", image, base, scan.Policy{Scope: "some"}, `scope "some"`},
		{"bad threshold", image, base, scan.Policy{Threshold: 9}, "threshold"},
		// Trivy suppressed a finding that the given ignore file does not name.
		{"suppressed by something else", image, base, scan.Policy{IgnoreFile: writeTemp(t, "vulnerabilities:\n  - id: CVE-2000-0001\n")}, "no rule of the ignore file names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := scan.Evaluate(tt.image, tt.base, tt.policy)
			var gate *scan.GateError
			if err == nil || errors.As(err, &gate) || rep != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Evaluate = %v, %v; want an error containing %q", rep, err, tt.want)
			}
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ignore.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGateErrorMessage(t *testing.T) {
	err := &scan.GateError{Profile: "wso2is-acme", Image: "r/acme@sha256:ab", Threshold: scan.High, Scope: scan.ScopeAdded, Failed: []scan.Finding{
		{ID: "CVE-2021-44228", Package: "org.apache.logging.log4j:log4j-core", Path: "home/x/log4j-core-2.14.1.jar", InstalledVersion: "2.14.1", FixedVersion: "2.15.0", Severity: scan.Critical, Origin: scan.OriginInputs},
		{ID: "CVE-2024-9999", Package: "busybox", InstalledVersion: "1.36.1-r29", Severity: scan.High, Origin: scan.OriginInputs},
	}}
	want := `vulnerability gate refused r/acme@sha256:ab (profile wso2is-acme): 2 findings added by the build at or above HIGH:
  CVE-2021-44228 org.apache.logging.log4j:log4j-core 2.14.1 → 2.15.0 home/x/log4j-core-2.14.1.jar CRITICAL (inputs)
  CVE-2024-9999 busybox 1.36.1-r29 → (no fix) HIGH (inputs)`
	if got := err.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}
