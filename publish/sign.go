package publish

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/scan"
	"github.com/wso2img/wso2img/sign"
)

// signStage signs the pushed digest with cosign, unless a signature by this very
// signer already verifies for it. A signature by another key — one rotated out — does
// not count: the image is signed again with the current one.
type signStage struct{ p *Publisher }

func (signStage) Name() string { return "sign" }

func (s signStage) Run(ctx context.Context, img *Image) (Record, error) {
	signer := s.p.opts.Signer
	if signer == nil {
		return Record{Status: Off, Detail: "signing is off: the image is published unsigned"}, nil
	}
	done, err := signer.Signed(ctx, *img.Ref)
	if err != nil {
		return Record{}, err
	}
	if done {
		return Record{Status: Kept, Detail: "signed by " + signer.String() + " already"}, nil
	}
	if err := signer.Sign(ctx, *img.Ref, s.p.subject(img).Annotations()); err != nil {
		return Record{}, err
	}
	return Record{Status: Done, Detail: "signed by " + signer.String()}, nil
}

// attestStage attaches the signed attestations: SLSA provenance and an SPDX SBOM of
// the added layer. One already there by this signer is kept.
type attestStage struct{ p *Publisher }

func (attestStage) Name() string { return "attest" }

func (s attestStage) Run(ctx context.Context, img *Image) (Record, error) {
	signer := s.p.opts.Signer
	if signer == nil {
		return Record{Status: Off}, nil
	}
	subj := s.p.subject(img)
	have, err := signer.Attested(ctx, *img.Ref)
	if err != nil {
		return Record{}, err
	}
	var todo []sign.Attestation
	var made, kept []string
	for _, a := range []struct {
		predicateType string
		make          func() ([]byte, error)
	}{
		{sign.PredicateSLSAProvenance, subj.Provenance},
		{sign.PredicateSPDX, subj.SBOM},
	} {
		if have[a.predicateType] {
			kept = append(kept, a.predicateType)
			continue
		}
		pred, err := a.make()
		if err != nil {
			return Record{}, fmt.Errorf("attesting %s: %w", img.Ref, err)
		}
		todo = append(todo, sign.Attestation{PredicateType: a.predicateType, Predicate: pred})
		made = append(made, a.predicateType)
	}
	if len(img.Scans) > 0 {
		// A scan's result is new each time: its attestation replaces the last one.
		pred, err := scan.CombinedPredicate(img.Scans)
		if err != nil {
			return Record{}, err
		}
		todo = append(todo, sign.Attestation{PredicateType: scan.PredicateType, Predicate: pred})
		made = append(made, scan.PredicateType)
	}
	if len(todo) == 0 {
		return Record{Status: Kept, Detail: "attested by " + signer.String() + " already: " + strings.Join(kept, ", ")}, nil
	}
	if err := signer.AttestAll(ctx, *img.Ref, todo); err != nil {
		return Record{}, err
	}
	return Record{Status: Done, Detail: "attested " + strings.Join(made, ", ")}, nil
}

// subject describes the image for its signature annotations and attestations.
func (p *Publisher) subject(img *Image) *sign.Subject {
	return Subject(img.Plan, p.started, p.opts.Now())
}

// Subject describes a planned image for its signature annotations and attestations:
// started is when the run began, finished when the image was built.
func Subject(plan *build.Plan, started, finished time.Time) *sign.Subject {
	prof := plan.Profile
	s := &sign.Subject{
		Profile: prof.Name, ProfileFile: prof.File, ProfileDigest: prof.Digest(),
		Product: prof.Product, Version: prof.Version, WUM: plan.Update.WUM, Level: plan.Update.Level,
		BaseRef: plan.Base.Ref, BaseDigest: plan.Base.Digest,
		Platforms: plan.Platforms,
		User:      strconv.Itoa(plan.UID) + ":" + strconv.Itoa(plan.GID),
		BuiltAt:   started, FinishedAt: finished,
		Source: plan.Source, Revision: plan.Revision,
	}
	// The tags the image is about to get (none are written before signing).
	for _, t := range plan.Tags {
		s.Tags = append(s.Tags, t.Tag)
	}
	s.BuilderID, s.InvocationID = ciRun()
	for _, in := range plan.Inputs {
		si := sign.SubjectInput{Source: in.Source, Digest: in.Digest, Dir: in.Dir, Dest: in.Dest, Signer: in.Signer}
		if in.Archive != "" {
			// What was downloaded and verified is the archive; the SBOM lists its files.
			si.Digest = in.Archive
		}
		if in.Verified != nil {
			for _, f := range in.Verified.Files {
				if f.Type != "file" {
					continue
				}
				dest := in.Dest
				if in.Dir {
					dest = path.Join(in.Dest, f.Rel)
				}
				si.Files = append(si.Files, sign.SubjectFile{Path: dest, SHA256: f.SHA256, Size: f.Size})
			}
		}
		s.Inputs = append(s.Inputs, si)
	}
	return s
}

// ciRun names the builder and the run in GitHub Actions (the workflow file at its ref,
// and the run's URL); elsewhere both are empty and wso2img is the builder.
func ciRun() (builder, invocation string) {
	if os.Getenv("GITHUB_ACTIONS") != "true" {
		return "", ""
	}
	server := os.Getenv("GITHUB_SERVER_URL")
	if server == "" {
		server = "https://github.com"
	}
	if ref := os.Getenv("GITHUB_WORKFLOW_REF"); ref != "" {
		builder = server + "/" + ref
	}
	if repo, run := os.Getenv("GITHUB_REPOSITORY"), os.Getenv("GITHUB_RUN_ID"); repo != "" && run != "" {
		invocation = server + "/" + repo + "/actions/runs/" + run
		if a := os.Getenv("GITHUB_RUN_ATTEMPT"); a != "" {
			invocation += "/attempts/" + a
		}
	}
	return builder, invocation
}
