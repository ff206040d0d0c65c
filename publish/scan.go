package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/scan"
)

// Scanner is the vulnerability gate's scanner (*scan.Scanner: Trivy's CLI).
type Scanner interface {
	Scan(ctx context.Context, req scan.Request) (*scan.Report, error)
}

// scanStage is the vulnerability gate: the pushed image is scanned by digest, every
// platform, before anything signs or tags it. A refused image stays in the registry by
// digest only; nothing names it.
type scanStage struct{ p *Publisher }

func (scanStage) Name() string { return "scan" }

func (s scanStage) Run(ctx context.Context, img *Image) (Record, error) {
	sc := s.p.opts.Scanner
	if sc == nil {
		return Record{Status: Off, Detail: s.p.opts.ScanOff}, nil
	}
	plan := img.Plan
	pol, err := Policy(plan)
	if err != nil {
		return Record{}, err
	}
	var reports []scan.PlatformReport
	var refused []error
	for _, pl := range plan.Platforms {
		req := scan.Request{Profile: plan.Profile.Name, Image: img.Ref.String(), Base: plan.Base.Pull, Policy: pol}
		if len(plan.Platforms) > 1 {
			req.Platform = pl
		}
		rep, err := sc.Scan(ctx, req)
		var gate *scan.GateError
		switch {
		case errors.As(err, &gate):
			refused = append(refused, err)
		case err != nil:
			return Record{}, fmt.Errorf("profile %q: scanning %s (%s): %w", plan.Profile.Name, img.Ref, pl, err)
		}
		reports = append(reports, scan.PlatformReport{Platform: pl, Report: rep})
	}
	img.Scans = reports
	rec := Record{Status: Done, Detail: summary(reports)}
	if len(refused) > 0 {
		if push, ok := img.record("push"); ok && push.Status == Kept {
			rec.Notes = append(rec.Notes, fmt.Sprintf("%s:%s named this image before the findings were known; it is left as it is, and no floating tag moves to it", plan.Repository, plan.Tags[0].Tag))
		}
		return rec, errors.Join(refused...)
	}
	return rec, nil
}

// Policy is the gate's policy for a plan: its profile's scan block, with the defaults
// (HIGH, scope added).
func Policy(plan *build.Plan) (scan.Policy, error) {
	sc := plan.Profile.Scan
	sev, scope := sc.Severity, sc.Scope
	pol := scan.Policy{Threshold: scan.High, Scope: scan.ScopeAdded, IgnoreFile: sc.Ignore}
	if sev != "" {
		s, err := scan.ParseSeverity(sev)
		if err != nil {
			return pol, err
		}
		pol.Threshold = s
	}
	if scope == string(scan.ScopeAll) {
		pol.Scope = scan.ScopeAll
	}
	return pol, nil
}

// summary says what the scans found, in a line.
func summary(reports []scan.PlatformReport) string {
	var parts []string
	for _, pr := range reports {
		r := pr.Report
		if r == nil {
			continue
		}
		added := 0
		for _, f := range r.Findings {
			if f.Origin == scan.OriginInputs {
				added++
			}
		}
		p := fmt.Sprintf("%d finding(s), %d added by the build, %d at or above %s counted (scope %s), %d ignored", len(r.Findings), added, len(r.Failed), r.Threshold, r.Scope, len(r.Ignored))
		if len(reports) > 1 {
			p = pr.Platform + ": " + p
		}
		parts = append(parts, p)
	}
	head := "scanned by digest"
	if len(reports) > 0 && reports[0].Report != nil {
		r := reports[0].Report
		head = fmt.Sprintf("scanned by digest with %s %s (DB of %s)", r.Scanner.Name, r.Scanner.Version, r.DB.UpdatedAt.UTC().Format("2006-01-02 15:04"))
	}
	return head + ": " + strings.Join(parts, "; ")
}
