package scan_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/scan"
)

func TestParseSeverity(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want scan.Severity
	}{{"UNKNOWN", scan.Unknown}, {"low", scan.Low}, {"Medium", scan.Medium}, {"HIGH", scan.High}, {"critical", scan.Critical}} {
		got, err := scan.ParseSeverity(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if strings.ToUpper(tt.in) != got.String() {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), strings.ToUpper(tt.in))
		}
	}
	for _, bad := range []string{"", "SEVERE", "HIGH ", "4"} {
		if _, err := scan.ParseSeverity(bad); err == nil || !strings.Contains(err.Error(), "CRITICAL") {
			t.Errorf("ParseSeverity(%q) = %v, want an error listing the severities", bad, err)
		}
	}
	if !(scan.Unknown < scan.Low && scan.Low < scan.Medium && scan.Medium < scan.High && scan.High < scan.Critical) {
		t.Error("severities are not ordered UNKNOWN < LOW < MEDIUM < HIGH < CRITICAL")
	}
}

func TestParseScope(t *testing.T) {
	for in, want := range map[string]scan.Scope{"": scan.ScopeAdded, "added": scan.ScopeAdded, "ALL": scan.ScopeAll} {
		if got, err := scan.ParseScope(in); err != nil || got != want {
			t.Errorf("ParseScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := scan.ParseScope("base"); err == nil {
		t.Error(`ParseScope("base") succeeded`)
	}
}

func TestReadIgnoreFile(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		yaml          string
		active, extra []scan.IgnoreRule
		wantErr       string
	}{
		{
			name: "active and expired",
			yaml: `vulnerabilities:
  - id: CVE-2021-44228
    paths:
      - "home/wso2carbon/**/log4j-core-*.jar"
    purls:
      - pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1
    statement: patched by WSO2-2021-1234
    expired_at: 2027-01-01
  - id: CVE-2025-26519
    expired_at: 2026-11-30
    statement: was waiting for 1.2.5-r1
  - id: CVE-2024-0001
misconfigurations:
  - id: AVD-DS-0002
`,
			active: []scan.IgnoreRule{
				{ID: "CVE-2021-44228", Paths: []string{"home/wso2carbon/**/log4j-core-*.jar"}, PURLs: []string{"pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}, Statement: "patched by WSO2-2021-1234", ExpiredAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
				{ID: "CVE-2024-0001"},
			},
			extra: []scan.IgnoreRule{{ID: "CVE-2025-26519", Statement: "was waiting for 1.2.5-r1", ExpiredAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}},
		},
		{name: "empty file", yaml: ""},
		{name: "misspelt key", yaml: "vulnerabilities:\n  - id: CVE-1\n    expires_at: 2027-01-01\n", wantErr: "expires_at"},
		{name: "no id", yaml: "vulnerabilities:\n  - statement: x\n", wantErr: "has no id"},
		{name: "bad purl", yaml: "vulnerabilities:\n  - id: CVE-1\n    purls: [maven/x]\n", wantErr: "purl"},
		{name: "bad date", yaml: "vulnerabilities:\n  - id: CVE-1\n    expired_at: next year\n", wantErr: "not a Trivy YAML ignore file"},
		{name: "plain .trivyignore", yaml: "CVE-2021-44228\n", wantErr: "not a Trivy YAML ignore file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), ".trivyignore.yaml")
			if err := os.WriteFile(p, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			active, expired, err := scan.ReadIgnoreFile(p, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
					t.Fatalf("ReadIgnoreFile = %v, want an error naming the file and %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(active, tt.active) || !reflect.DeepEqual(expired, tt.extra) {
				t.Errorf("ReadIgnoreFile =\n  active %+v\n  expired %+v\nwant\n  active %+v\n  expired %+v", active, expired, tt.active, tt.extra)
			}
		})
	}
	if _, _, err := scan.ReadIgnoreFile(filepath.Join(t.TempDir(), "missing.yaml"), now); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("ReadIgnoreFile(missing) = %v, want an error naming the file", err)
	}
}
