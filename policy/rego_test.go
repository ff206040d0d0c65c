package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/cosign/v2/pkg/cosign/rego"
	"go.yaml.in/yaml/v3"

	"github.com/wso2img/wso2img/policy"
)

// TestVulnScanRegoEvaluates runs the vulnerability attestation's policy through the
// evaluator policy-controller calls for "rego" policies (cosign's
// rego.ValidateJSONWithModuleInput, via policy.EvaluatePolicyAgainstJSON), on statements
// shaped as policy-controller hands them over: the verified in-toto statement.
func TestVulnScanRegoEvaluates(t *testing.T) {
	maxAge := 7 * 24 * time.Hour
	out, err := policy.Generate(policy.Options{
		Repositories: []string{"registry.acme.com/wso2/wso2is"}, PublicKey: testKey,
		RequireVulnScan: true, MaxScanAge: maxAge, Engines: []policy.Engine{policy.PolicyController},
	})
	if err != nil {
		t.Fatal(err)
	}
	module := regoOf(t, out)
	now := time.Now().UTC()
	for _, tc := range []struct {
		name      string
		statement string
		ok        bool
	}{
		{"fresh scan", vulnStatement(policy.PredicateVuln, now.Add(-time.Hour)), true},
		{"scan just within the age", vulnStatement(policy.PredicateVuln, now.Add(-maxAge+time.Minute)), true},
		{"scan too old", vulnStatement(policy.PredicateVuln, now.Add(-maxAge-time.Minute)), false},
		{"no scan time", `{"predicateType":"` + policy.PredicateVuln + `","predicate":{"metadata":{}}}`, false},
		{"not a time", `{"predicateType":"` + policy.PredicateVuln + `","predicate":{"metadata":{"scanFinishedOn":"yesterday"}}}`, false},
		{"another predicate", vulnStatement(policy.PredicateSPDX, now), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rego.ValidateJSONWithModuleInput([]byte(tc.statement), module)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Error("admitted")
			}
		})
	}
}

func vulnStatement(predicateType string, finished time.Time) string {
	return fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":%q,"subject":[{"name":"registry.acme.com/wso2/wso2is","digest":{"sha256":"00"}}],
"predicate":{"invocation":{"uri":"","event_id":"","builder.id":""},"scanner":{"uri":"pkg:github/aquasecurity/trivy@0.58.0","version":"0.58.0","result":{}},
"metadata":{"scanStartedOn":%q,"scanFinishedOn":%q}}}`, predicateType, finished.Add(-time.Minute).Format(time.RFC3339Nano), finished.Format(time.RFC3339Nano))
}

// regoOf finds the rego policy of the vulnerability-scan attestation.
func regoOf(t *testing.T, stream []byte) string {
	t.Helper()
	for _, d := range splitDocs(t, stream) {
		var cip struct {
			Spec struct {
				Authorities []struct {
					Attestations []struct {
						Name   string
						Policy struct{ Type, Data string }
					}
				}
			}
		}
		if err := yaml.Unmarshal(d, &cip); err != nil {
			t.Fatal(err)
		}
		for _, a := range cip.Spec.Authorities {
			for _, at := range a.Attestations {
				if at.Name == "vulnerability-scan" {
					if at.Policy.Type != "rego" || !strings.Contains(at.Policy.Data, "package sigstore") {
						t.Fatalf("vulnerability-scan policy %+v", at.Policy)
					}
					return at.Policy.Data
				}
			}
		}
	}
	t.Fatal("no vulnerability-scan attestation policy")
	return ""
}
