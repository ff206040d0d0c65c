package publish

import (
	"context"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/scan"
)

// Stage is one step of publishing an image.
type Stage interface {
	// Name is how records and messages call the stage: "push", "scan", "sign",
	// "attest", "tag", "export".
	Name() string
	// Run does the stage's work on img and says what it did. An error stops the
	// stages after it.
	Run(ctx context.Context, img *Image) (Record, error)
}

// Status is how a stage ended.
type Status string

const (
	// Done: the stage did its work now.
	Done Status = "done"
	// Kept: the work was there already (the identical image under its unique tag, a
	// signature by this very signer), so nothing was written.
	Kept Status = "kept"
	// Off: the stage is switched off for this run (no signer, no scanner).
	Off Status = "off"
	// Failed: the stage failed; the ones after it did not run.
	Failed Status = "failed"
	// NotRun: an earlier stage failed.
	NotRun Status = "not run"
)

// Record is what one stage did to one image.
type Record struct {
	Stage  string `json:"stage"`
	Status Status `json:"status"`
	// Detail says what was done or found, in a line.
	Detail string `json:"detail,omitempty"`
	// Notes are things the user should know that did not fail the stage (a floating
	// tag left where it was).
	Notes []string `json:"notes,omitempty"`
}

// Image is one plan on its way through the stages: what each stage found or made,
// for the stages after it.
type Image struct {
	Plan *build.Plan
	// Ref is the image in the registry by digest, once pushed (or found there).
	Ref *name.Digest
	// Desc is the pushed manifest or index, read once after the push.
	Desc *remote.Descriptor
	// Digest is the image's digest (also for local output).
	Digest string
	// Builder names the daemon that built it.
	Builder string
	// LayersAdded and BytesAdded measure what the image adds to its base.
	LayersAdded int
	BytesAdded  int64
	// BaseBytesCopied is what the base stage copied into the target registry;
	// BaseBytesPulled what BuildKit had to pull of the base to push the image.
	BaseBytesCopied, BaseBytesPulled int64
	// Scans are the vulnerability gate's reports, one a platform.
	Scans []scan.PlatformReport
	// Tags are the tags that name the image once the tag stage ran.
	Tags []string
	// Output is the local OCI layout or archive written, for local output.
	Output string
	// Records are the stages' records so far, in order.
	Records []Record
}

// record returns the record of the named stage, if it ran.
func (img *Image) record(stage string) (Record, bool) {
	for _, r := range img.Records {
		if r.Stage == stage {
			return r, true
		}
	}
	return Record{}, false
}

// result reads the image's result from its records.
func (img *Image) result() *Result {
	plan := img.Plan
	r := &Result{
		Profile: plan.Profile.Name, Image: plan.Repository, Digest: img.Digest, Tags: img.Tags,
		Platforms: plan.Platforms, Reasons: plan.Reasons, Output: img.Output, Builder: img.Builder,
		LayersAdded: img.LayersAdded, BytesAdded: img.BytesAdded, Stages: img.Records,
		BaseBytesCopied: img.BaseBytesCopied, BaseBytesPulled: img.BaseBytesPulled,
	}
	if r.Tags == nil {
		r.Tags = []string{}
	}
	r.Base.Ref, r.Base.Digest = plan.Base.Ref, plan.Base.Digest
	if rec, ok := img.record("push"); ok {
		r.Pushed = rec.Status == Done
	}
	if rec, ok := img.record("sign"); ok {
		r.Signed = rec.Status == Done || rec.Status == Kept
	}
	for _, rec := range img.Records {
		r.Notes = append(r.Notes, rec.Notes...)
	}
	for _, pr := range img.Scans {
		if pr.Report != nil {
			r.Scan = append(r.Scan, ScanResult{Platform: pr.Platform, Report: pr.Report})
		}
	}
	return r
}

// Result is what publishing one profile did, in the shape of `build --json`.
type Result struct {
	Profile string `json:"profile"`
	// Image is the repository pushed to ("" for local output).
	Image  string `json:"image,omitempty"`
	Digest string `json:"digest"`
	// Tags are the tags that name Digest now, unique first.
	Tags []string `json:"tags"`
	Base struct {
		Ref    string `json:"ref"`
		Digest string `json:"digest"`
	} `json:"base"`
	// Signed: a signature by this run's signer is on the image (made now, or before).
	Signed bool `json:"signed"`
	// LayersAdded counts the layers the image has beyond the base's (per platform).
	LayersAdded int `json:"layersAdded"`
	// BytesAdded is the compressed size of the added layers, summed over platforms.
	BytesAdded int64 `json:"bytesAdded"`
	// BaseBytesCopied is what was copied of the base into the target registry (its
	// blobs the target lacked); BaseBytesPulled what BuildKit pulled of the base to push
	// the image (its layers the target repository lacked and could not mount). With the
	// base in the target registry both are 0 once the base is there.
	BaseBytesCopied int64 `json:"baseBytesCopied"`
	BaseBytesPulled int64 `json:"baseBytesPulled"`
	// Pushed is false when the registry already held this very image under its unique
	// tag: nothing was pushed again.
	Pushed    bool     `json:"pushed"`
	Platforms []string `json:"platforms"`
	// Output is the OCI folder or archive written, for local output.
	Output string `json:"output,omitempty"`
	// Builder names the BuildKit daemon that built the image.
	Builder string `json:"builder,omitempty"`
	// Skipped says the profile was not built (build --if-changed: the target holds it
	// already); Reasons say why a profile was, or was not, built.
	Skipped bool     `json:"skipped,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	// Stages record what each publishing stage did, in order.
	Stages []Record `json:"stages,omitempty"`
	// Notes collect what the stages want the user to know.
	Notes []string `json:"notes,omitempty"`
	// Scan holds the vulnerability gate's reports (findings, failed, ignored), one a
	// platform, when it ran.
	Scan []ScanResult `json:"scan,omitempty"`
}

// ScanResult is one platform's vulnerability report in a Result.
type ScanResult struct {
	Platform string `json:"platform"`
	*scan.Report
}

// String is a one-line summary of the result.
func (r *Result) String() string {
	where := r.Image + "@" + r.Digest
	if r.Output != "" {
		where = r.Output + " (" + r.Digest + ")"
	}
	return r.Profile + ": " + where + " tags " + strings.Join(r.Tags, ", ")
}
