package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/cosign/v2/pkg/cosign"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/scan"
)

// VulnScan is what `verify --require-vuln-scan` asks of an image: a vulnerability
// attestation (cosign's vuln/v1, which wso2img's gate attaches) signed by the expected
// key or identity, recent enough, and with no finding at or above a severity.
type VulnScan struct {
	// MaxAge is how long ago the scan may have finished; 0: any age.
	MaxAge time.Duration
	// MaxSeverity, when set, fails an image whose scan found anything at or above it —
	// base findings included: the attestation holds what Trivy saw in the whole image.
	MaxSeverity scan.Severity
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// vulnPredicate is the part of cosign's vuln/v1 predicate the check reads.
type vulnPredicate struct {
	Scanner struct {
		URI     string          `json:"uri"`
		Version string          `json:"version"`
		Result  json.RawMessage `json:"result"`
	} `json:"scanner"`
	Metadata struct {
		ScanFinishedOn time.Time `json:"scanFinishedOn"`
	} `json:"metadata"`
}

// trivyResult is the part of Trivy's JSON report the check reads.
type trivyResult struct {
	Results []struct {
		Target          string
		Vulnerabilities []struct {
			VulnerabilityID, PkgName, InstalledVersion, Severity string
		}
	}
}

// vulnScan checks ref's newest vulnerability attestation by the expected signer.
func (c *sigChecker) vulnScan(ctx context.Context, ref name.Digest, reg registry.Options, want VulnScan) (Check, error) {
	ch := Check{ID: CheckVulnScan, Title: "a recent vulnerability scan, signed", Rule: ruleVulnScan}
	co := c.checkOpts(ctx, reg)
	co.ClaimVerifier = cosign.IntotoSubjectClaimVerifier
	atts, _, err := cosign.VerifyImageAttestations(ctx, ref, co)
	if err != nil && isOperational(err) {
		return ch, err
	}
	var newest *vulnPredicate
	for _, a := range atts {
		p, err := vulnOf(a.Payload)
		if err != nil || p == nil {
			continue
		}
		if newest == nil || p.Metadata.ScanFinishedOn.After(newest.Metadata.ScanFinishedOn) {
			newest = p
		}
	}
	if newest == nil {
		ch.Status, ch.Detail = Fail, fmt.Sprintf("no vulnerability attestation (%s) signed by %s about %s: the image was not scanned, or not by a gate this key or identity vouches for", scan.PredicateType, c.opts.expected(), ref.DigestStr())
		return ch, nil
	}
	now := time.Now
	if want.Now != nil {
		now = want.Now
	}
	age := now().Sub(newest.Metadata.ScanFinishedOn)
	ch.Detail = fmt.Sprintf("scanned %s ago (%s) with %s", age.Round(time.Minute), newest.Metadata.ScanFinishedOn.UTC().Format(time.RFC3339), newest.Scanner.URI)
	if want.MaxAge > 0 && age > want.MaxAge {
		ch.Status = Fail
		ch.Detail += fmt.Sprintf(": older than --max-scan-age %s; scan it again (wso2img watch reports it due: rescan)", want.MaxAge)
		return ch, nil
	}
	if want.MaxSeverity > scan.Unknown {
		found, err := atOrAbove(newest.Scanner.Result, want.MaxSeverity)
		if err != nil {
			ch.Status, ch.Detail = Fail, ch.Detail+": its result is not a Trivy report: "+err.Error()
			return ch, nil
		}
		if len(found) > 0 {
			ch.Status, ch.Findings = Fail, found
			ch.Detail += fmt.Sprintf(": %d finding(s) at or above %s (--max-scan-severity)", len(found), want.MaxSeverity)
			return ch, nil
		}
	}
	ch.Status = Pass
	return ch, nil
}

// vulnOf reads the vuln/v1 predicate of an attestation's DSSE envelope, or nil when the
// attestation is of another type.
func vulnOf(payload func() ([]byte, error)) (*vulnPredicate, error) {
	raw, err := payload()
	if err != nil {
		return nil, err
	}
	var env struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	st, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, err
	}
	var stmt struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(st, &stmt); err != nil || stmt.PredicateType != scan.PredicateType {
		return nil, err
	}
	var p vulnPredicate
	if err := json.Unmarshal(stmt.Predicate, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// atOrAbove lists the findings of a Trivy report (or of each platform's, for a
// multi-platform image) at or above min.
func atOrAbove(result json.RawMessage, min scan.Severity) ([]string, error) {
	reports := map[string]json.RawMessage{}
	var multi struct {
		Platforms map[string]json.RawMessage `json:"platforms"`
	}
	if err := json.Unmarshal(result, &multi); err == nil && len(multi.Platforms) > 0 {
		reports = multi.Platforms
	} else {
		reports[""] = result
	}
	var found []string
	for pl, raw := range reports {
		var r trivyResult
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, err
		}
		for _, res := range r.Results {
			for _, v := range res.Vulnerabilities {
				sev, err := scan.ParseSeverity(v.Severity)
				if err != nil || sev < min {
					continue
				}
				f := fmt.Sprintf("%s %s %s %s in %s", sev, v.VulnerabilityID, v.PkgName, v.InstalledVersion, res.Target)
				if pl != "" {
					f += " [" + pl + "]"
				}
				found = append(found, f)
			}
		}
	}
	sort.Strings(found)
	return found, nil
}

// parseAge reads --max-scan-age: a Go duration or a number of days ("7d").
func ParseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(d, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == d && n < 100000 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not an age such as 7d or 36h", s)
	}
	return v, nil
}
