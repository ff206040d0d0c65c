// Package publish owns what happens to a planned image: its stages, in this order,
//
//	push by digest → scan (vulnerability gate) → sign → attest → tag
//
// so that no tag ever names an image that was not signed, or that failed the gate. The
// order is written once, in Publisher.stages; a new stage is one type and one line there.
// Every stage leaves a Record (done, kept, off, failed, not run), and the result of a
// build — what `build --json` prints, whether it was pushed or signed, the exit code — is
// read from those records.
//
// It also owns what is decided across the profiles of one run before anything is
// pushed: which profiles are built (build --if-changed), and that no two of them publish
// the same unique tag.
//
// Building is the build package's job (build.Interface), signing the sign package's;
// publish calls them. It prints nothing but log lines to Options.Log, and must not
// import cobra or viper.
package publish

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/sign"
)

// DefaultParallel bounds how many profiles are published at once on one daemon:
// BuildKit runs their solves side by side, and the registry takes their pushes side by
// side. A fleet of builders takes as many as it has slots (Options.Parallel).
const DefaultParallel = 4

// Options configure a Publisher.
type Options struct {
	// Registry says how to reach registries.
	Registry registry.Options
	// Planner plans each profile (base pinned, inputs verified).
	Planner *build.Planner
	// Builder builds each plan and pushes it by digest.
	Builder build.Interface
	// Output is where images go: the registry (every stage), or a local OCI layout or
	// archive (built and written, nothing else).
	Output build.Output
	// Signer signs and attests; nil publishes unsigned images (sign and attest are off).
	Signer *sign.Signer
	// Scanner runs the vulnerability gate; nil switches it off, for the reason ScanOff
	// gives (--scan=false, no Trivy found).
	Scanner Scanner
	ScanOff string
	// BaseCache, when set (--base-cache), replaces every profile's baseCache: where a
	// base from another registry is kept in the target registry, or Off.
	BaseCache *profiles.BaseCache
	// Select, when set (build --if-changed), decides after planning whether each
	// profile is built, and under which release.
	Select func(ctx context.Context, plan *build.Plan) (build.Selection, error)
	// Parallel bounds how many profiles are published at once; default DefaultParallel.
	Parallel int
	// Log receives progress lines; nil is silent.
	Log io.Writer
	// Now is the clock, for the provenance's times; nil is time.Now.
	Now func() time.Time
}

// Publisher publishes the profiles of one run.
type Publisher struct {
	opts    Options
	started time.Time
}

// New checks the options and makes a Publisher.
func New(opts Options) (*Publisher, error) {
	if opts.Planner == nil || opts.Builder == nil {
		return nil, fmt.Errorf("publish: a planner and a builder are required")
	}
	if opts.Output.Kind == "" {
		opts.Output.Kind = "registry"
	}
	if opts.Output.Kind != "registry" && (opts.Signer != nil || opts.Select != nil) {
		return nil, fmt.Errorf("publish: signing and --if-changed need a registry, not --output %s", opts.Output.Kind)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultParallel
	}
	return &Publisher{opts: opts, started: opts.Now()}, nil
}

// stages are the publishing stages of one image, in their order: the one place that
// says what happens after a build, and in which order. Stages on one line run side by
// side; a line starts once every stage of the line before it is done.
func (p *Publisher) stages() [][]Stage {
	if p.opts.Output.Kind != "registry" {
		return [][]Stage{{exportStage{p}}}
	}
	return [][]Stage{
		{baseStage{p}},                 // a base from another registry is copied into the target's, to be mounted
		{pushStage{p}},                 // push by digest; or find the identical image under its unique tag
		{scanStage{p}},                 // the vulnerability gate, on the pushed digest, every platform
		{signStage{p}, attestStage{p}}, // cosign signature over the digest; SLSA provenance and SPDX SBOM, signed the same way
		{tagStage{p}},                  // unique tag (never moved), then floating tags (only forward)
	}
}

// Run plans every profile, decides which are built, refuses two that would publish the
// same unique tag, and publishes the rest, several at a time. Results come back in the
// profiles' order, nil for a profile that failed before publishing began; every
// failure is reported, joined, and one profile's failure does not stop the others.
func (p *Publisher) Run(ctx context.Context, profs []*profiles.Profile) ([]*Result, error) {
	plans, errs := p.opts.Planner.PlanAll(ctx, profs)
	// Every plan's staged inputs go when the run ends, whatever happened to it.
	defer func(all []*build.Plan) {
		for _, plan := range all {
			plan.Close()
		}
	}(slices.Clone(plans))
	results := make([]*Result, len(profs))
	if p.opts.Select != nil {
		for i, plan := range plans {
			if plan == nil {
				continue
			}
			sel, err := p.opts.Select(ctx, plan)
			switch {
			case err != nil:
				plans[i], errs[i] = nil, err
			case sel.Plan == nil:
				plans[i], results[i] = nil, skipped(plan, sel)
			default:
				plans[i] = sel.Plan
				plans[i].Reasons = sel.Reasons
			}
		}
	}
	for i, err := range conflicts(plans) {
		if err != nil {
			plans[i], errs[i] = nil, err
		}
	}
	var g errgroup.Group
	g.SetLimit(p.opts.Parallel)
	for i, plan := range plans {
		if plan == nil {
			continue
		}
		g.Go(func() error {
			results[i], errs[i] = p.Publish(ctx, plan)
			return nil
		})
	}
	_ = g.Wait()
	return results, build.JoinErrors(errs)
}

// Publish runs every stage on one plan, in order. A failed stage stops the lines of
// stages after it (they are recorded as not run); the result says how far it got.
func (p *Publisher) Publish(ctx context.Context, plan *build.Plan) (*Result, error) {
	img := &Image{Plan: plan}
	var failed error
	for _, line := range p.stages() {
		if failed != nil {
			for _, st := range line {
				img.Records = append(img.Records, Record{Stage: st.Name(), Status: NotRun})
			}
			continue
		}
		recs := make([]Record, len(line))
		errs := make([]error, len(line))
		var wg sync.WaitGroup
		for i, st := range line {
			wg.Add(1)
			go func() {
				defer wg.Done()
				recs[i], errs[i] = st.Run(ctx, img)
			}()
		}
		wg.Wait()
		for i, st := range line {
			rec, err := recs[i], errs[i]
			rec.Stage = st.Name()
			if err != nil {
				rec.Status = Failed
				if rec.Detail == "" {
					rec.Detail = err.Error()
				}
				if failed == nil {
					failed = p.stageError(img, st.Name(), err)
				}
			}
			img.Records = append(img.Records, rec)
			if rec.Detail != "" {
				fmt.Fprintf(p.opts.Log, "profile %q: %s (%s): %s\n", plan.Profile.Name, rec.Stage, rec.Status, rec.Detail)
			}
		}
	}
	return img.result(), failed
}

// stageError says how far an image got when a stage failed: after the push, it exists
// by digest only, and no tag names it.
func (p *Publisher) stageError(img *Image, stage string, err error) error {
	if img.Ref == nil || stage == "push" || stage == "tag" {
		return err
	}
	return &StageError{Profile: img.Plan.Profile.Name, Stage: stage, Ref: img.Ref.String(), Err: err}
}

// StageError is a stage after the push that failed: the image is in the registry by
// digest, and no tag names it.
type StageError struct {
	Profile, Stage, Ref string
	Err                 error
}

func (e *StageError) Error() string {
	return fmt.Sprintf("profile %q: %s was pushed but not tagged: %s: %v", e.Profile, e.Ref, e.Stage, e.Err)
}

func (e *StageError) Unwrap() error { return e.Err }

// ConflictError is two or more profiles of one run that would publish the same unique
// tag: the second would find it taken by the first, so both are refused before
// anything is pushed.
type ConflictError struct {
	Profile string
	Tag     string
	Others  []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("profile %q: unique tag %s is also the tag of profile(s) %s in this run: a unique tag names one image; give each profile its own target repository or release (nothing was pushed for them)",
		e.Profile, e.Tag, strings.Join(quoteAll(e.Others), ", "))
}

// conflicts finds the plans that share a unique tag with another plan.
func conflicts(plans []*build.Plan) []error {
	byTag := map[string][]int{}
	for i, plan := range plans {
		if plan != nil && plan.Repository != "" {
			tag := plan.Repository + ":" + plan.Tags[0].Tag
			byTag[tag] = append(byTag[tag], i)
		}
	}
	errs := make([]error, len(plans))
	for tag, idx := range byTag {
		if len(idx) < 2 {
			continue
		}
		for _, i := range idx {
			var others []string
			for _, j := range idx {
				if j != i {
					others = append(others, plans[j].Profile.Name)
				}
			}
			sort.Strings(others)
			errs[i] = &ConflictError{Profile: plans[i].Profile.Name, Tag: tag, Others: others}
		}
	}
	return errs
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

// skipped is the result of a profile the selector did not build.
func skipped(plan *build.Plan, sel build.Selection) *Result {
	r := &Result{Profile: plan.Profile.Name, Image: plan.Repository, Digest: sel.Digest, Skipped: true,
		Reasons: sel.Reasons, Platforms: plan.Platforms}
	r.Base.Ref, r.Base.Digest = plan.Base.Ref, plan.Base.Digest
	if sel.Tag != "" {
		r.Tags = []string{sel.Tag}
	}
	return r
}
