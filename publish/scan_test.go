package publish_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/signtest"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/scan"
	"github.com/wso2img/wso2img/sign"
	"github.com/wso2img/wso2img/verify"
)

// fakeScanner stands in for Trivy in unit tests (the end-to-end tests run the real
// one): it refuses the image when refuse is set.
type fakeScanner struct {
	refuse bool
	seen   []scan.Request
}

func (f *fakeScanner) Scan(_ context.Context, req scan.Request) (*scan.Report, error) {
	f.seen = append(f.seen, req)
	finding := scan.Finding{ID: "CVE-2021-44228", Package: "org.apache.logging.log4j:log4j-core", InstalledVersion: "2.14.1", FixedVersion: "2.15.0",
		Severity: scan.Critical, Origin: scan.OriginInputs, Path: "/home/wso2carbon/wso2is-5.8.0/lib/log4j-core-2.14.1.jar"}
	r := &scan.Report{Image: req.Image, Threshold: req.Policy.Threshold, Scope: req.Policy.Scope,
		Scanner:  scan.ScannerInfo{Name: "trivy", Version: "0.74.0", URI: "pkg:github/aquasecurity/trivy@0.74.0"},
		DB:       scan.DBInfo{URI: scan.DefaultDBRepository, UpdatedAt: time.Now()},
		Findings: []scan.Finding{finding}, StartedAt: time.Now(), FinishedAt: time.Now(),
		Result: []byte(`{"SchemaVersion":2,"Results":[]}`)}
	if f.refuse {
		r.Failed = r.Findings
		return r, &scan.GateError{Profile: req.Profile, Image: req.Image, Threshold: req.Policy.Threshold, Scope: req.Policy.Scope, Failed: r.Failed}
	}
	return r, nil
}

func (e *env) runScanned(sc publish.Scanner, key string, prof ...*profiles.Profile) ([]*publish.Result, error) {
	e.t.Helper()
	planner, err := build.NewPlanner(build.Options{Registry: e.reg, Inputs: inputsOptions(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := sign.New(context.Background(), sign.Options{Key: key, Password: signtest.PasswordFunc, Registry: e.reg})
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := publish.New(publish.Options{Registry: e.reg, Planner: planner, Builder: &fakeBuilder{reg: e.reg}, Signer: s, Scanner: sc})
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Run(context.Background(), prof)
}

// TestScanGate: a refused image is pushed (by digest) but neither signed nor tagged, and
// the error is the gate's; a passing one carries a signed vulnerability attestation.
func TestScanGate(t *testing.T) {
	e := newEnv(t)
	key, pub := signtest.Keys(t)

	res, err := e.runScanned(&fakeScanner{refuse: true}, key, e.profile("is", 1565855673150, 0, "a"))
	var gate *scan.GateError
	if !errors.As(err, &gate) || !strings.Contains(err.Error(), "CVE-2021-44228") {
		t.Fatalf("error %v, want the gate's", err)
	}
	r := res[0]
	if stage(r, "scan").Status != publish.Failed || stage(r, "sign").Status != publish.NotRun || stage(r, "tag").Status != publish.NotRun || len(r.Tags) != 0 || !r.Pushed {
		t.Errorf("refused: %+v", r.Stages)
	}
	if len(r.Scan) != 1 || len(r.Scan[0].Failed) != 1 {
		t.Errorf("the result lacks the findings: %+v", r.Scan)
	}
	if e.digest(e.host+"/acme/wso2is:5.8.0.1565855673150") != "" {
		t.Error("a tag names the refused image")
	}

	sc := &fakeScanner{}
	res, err = e.runScanned(sc, key, e.profile("is", 1565855673150, 0, "a"))
	if err != nil {
		t.Fatal(err)
	}
	r = res[0]
	if len(sc.seen) != 1 || !strings.Contains(sc.seen[0].Image, "@sha256:") || !strings.Contains(sc.seen[0].Base, "@sha256:") || sc.seen[0].Policy.Threshold != scan.High || sc.seen[0].Policy.Scope != scan.ScopeAdded {
		t.Errorf("scan requests %+v: want the image and base by digest, HIGH, scope added", sc.seen)
	}
	if !strings.Contains(stage(r, "attest").Detail, scan.PredicateType) || len(r.Tags) != 2 {
		t.Errorf("passed: %+v", r.Stages)
	}
	pol := verify.DefaultPolicy()
	pol.Attestations = append(pol.Attestations, scan.PredicateType)
	v, err := verify.New(context.Background(), verify.Options{Registry: e.reg, Policy: pol, Signature: verify.SignatureOptions{Key: pub, IgnoreTlog: true}})
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := v.Verify(context.Background(), e.host+"/acme/wso2is@"+r.Digest)
	for _, c := range rep.Checks {
		if c.ID == verify.CheckAttestations && c.Status != verify.Pass {
			t.Errorf("the vulnerability attestation does not verify: %s", c.Detail)
		}
	}
}
