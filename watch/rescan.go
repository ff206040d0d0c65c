package watch

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/publish"
	"github.com/wso2img/wso2img/scan"
)

// Rescan says when an image that did not change is due all the same, for its
// vulnerability scan: new CVEs appear in images nobody rebuilt.
type Rescan struct {
	// After: due when the image's newest vulnerability attestation finished longer ago
	// than this, or it has none; 0 switches it off.
	After time.Duration
	// Scanner, when set, scans the image as it is, with today's DB: due when the gate
	// would now refuse it.
	Scanner publish.Scanner
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// rescan adds the reasons for scanning the image st.Current again, and marks st due.
func (r Rescan) rescan(ctx context.Context, reg registry.Options, plan *build.Plan, st *Status) error {
	if st.Current == nil || st.Current.Digest == "" {
		return nil
	}
	ref, err := reg.NewDigest(plan.Repository + "@" + st.Current.Digest)
	if err != nil {
		return err
	}
	if r.After > 0 {
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		last, err := lastScan(ctx, reg, ref)
		if err != nil {
			return fmt.Errorf("reading the vulnerability attestation of %s: %w", ref, err)
		}
		switch {
		case last.IsZero():
			st.Due = true
			st.Reasons = append(st.Reasons, fmt.Sprintf("rescan: %s has no vulnerability attestation", st.Current.Tag))
		case now().Sub(last) > r.After:
			st.Due = true
			st.Reasons = append(st.Reasons, fmt.Sprintf("rescan: %s was last scanned %s ago (%s), more than %s", st.Current.Tag, now().Sub(last).Round(time.Hour), last.UTC().Format(time.RFC3339), r.After))
		}
	}
	if r.Scanner != nil {
		pol, err := publish.Policy(plan)
		if err != nil {
			return err
		}
		req := scan.Request{Profile: plan.Profile.Name, Image: ref.String(), Base: plan.Base.Pull, Policy: pol}
		for _, pl := range plan.Platforms {
			if len(plan.Platforms) > 1 {
				req.Platform = pl
			}
			_, err := r.Scanner.Scan(ctx, req)
			var gate *scan.GateError
			if errors.As(err, &gate) {
				st.Due = true
				ids := make([]string, len(gate.Failed))
				for i, f := range gate.Failed {
					ids[i] = f.ID
				}
				st.Reasons = append(st.Reasons, fmt.Sprintf("rescan: today's vulnerability DB has %d finding(s) at or above %s in %s (%s); rebuilding runs the gate again", len(gate.Failed), gate.Threshold, st.Current.Tag, strings.Join(ids, ", ")))
				break
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// lastScan is when the newest vulnerability attestation stored for ref finished (zero
// when there is none). It reads the attestations without verifying them: a due profile
// is only rebuilt, and the rebuild's gate is what counts.
func lastScan(ctx context.Context, reg registry.Options, ref name.Digest) (time.Time, error) {
	desc, err := reg.Get(ctx, registry.CosignTag(ref.Context(), ref.DigestStr(), registry.AttSuffix))
	if err != nil || desc == nil {
		return time.Time{}, err
	}
	img, err := desc.Image()
	if err != nil {
		return time.Time{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return time.Time{}, err
	}
	var newest time.Time
	for _, l := range m.Layers {
		if l.Annotations["predicateType"] != scan.PredicateType {
			continue
		}
		blob, err := remote.Layer(ref.Context().Digest(l.Digest.String()), reg.Remote(ctx)...)
		if err != nil {
			return time.Time{}, err
		}
		rc, err := blob.Compressed()
		if err != nil {
			return time.Time{}, err
		}
		var env struct {
			Payload string `json:"payload"`
		}
		err = json.NewDecoder(rc).Decode(&env)
		rc.Close()
		if err != nil {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			continue
		}
		var stmt struct {
			Predicate struct {
				Metadata struct {
					ScanFinishedOn time.Time `json:"scanFinishedOn"`
				} `json:"metadata"`
			} `json:"predicate"`
		}
		if json.Unmarshal(raw, &stmt) == nil && stmt.Predicate.Metadata.ScanFinishedOn.After(newest) {
			newest = stmt.Predicate.Metadata.ScanFinishedOn
		}
	}
	return newest, nil
}
