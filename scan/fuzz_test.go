package scan_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wso2img/wso2img/scan"
)

// FuzzEvaluate feeds arbitrary bytes as Trivy's report of the image: Evaluate must never
// panic, and whatever it accepts must be judged consistently (every failed finding is a
// finding at or above the threshold, of origin "inputs" in scope added, and the error is
// a GateError exactly when something failed).
func FuzzEvaluate(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range seeds {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(scan.High), false)
	}
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"X","PkgName":"p","Severity":"BOGUS"}]}]}`), uint8(0), true)
	f.Add([]byte(`{"SchemaVersion":2,"Results":[{"ExperimentalModifiedFindings":[{"Type":"vulnerability","Finding":{"VulnerabilityID":"X"}}]}]}`), uint8(4), false)
	base, err := os.ReadFile(filepath.Join("testdata", "base.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, image []byte, threshold uint8, all bool) {
		p := scan.Policy{Threshold: scan.Severity(threshold % 5), Scope: scan.ScopeAdded}
		if all {
			p.Scope = scan.ScopeAll
		}
		rep, err := scan.Evaluate(image, base, p)
		var gate *scan.GateError
		if err != nil && !errors.As(err, &gate) {
			if rep != nil {
				t.Fatalf("Evaluate returned a report with the error %v", err)
			}
			return
		}
		if (gate != nil) != (len(rep.Failed) > 0) {
			t.Fatalf("GateError %v with %d failed findings", gate, len(rep.Failed))
		}
		inFindings := map[string]bool{}
		for _, fd := range rep.Findings {
			inFindings[fd.String()] = true
			if fd.Origin != scan.OriginBase && fd.Origin != scan.OriginInputs {
				t.Fatalf("finding without origin: %+v", fd)
			}
		}
		for _, fd := range rep.Failed {
			if !inFindings[fd.String()] || fd.Severity < p.Threshold || (p.Scope == scan.ScopeAdded && fd.Origin == scan.OriginBase) {
				t.Fatalf("failed finding %+v does not fail %+v", fd, p)
			}
		}
		if gate != nil && !strings.Contains(gate.Error(), rep.Failed[0].ID) {
			t.Fatalf("GateError %q does not name %s", gate, rep.Failed[0].ID)
		}
	})
}
