// Package watch decides which profiles need a rebuild: it compares what a plan would
// build (its rebuild ID: base digest, profile, every input) with what the target
// repository already holds for the same update, and says why a rebuild is due: a new
// WSO2 update, a base that moved, a changed profile or changed inputs.
//
// It reads registries and never writes to them; building is the build package's job.
package watch

import (
	"context"
	"fmt"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

// Status is whether one profile is due for a rebuild, and why.
type Status struct {
	Profile string `json:"profile"`
	// File is the profile's file (for a workflow matrix of the due profiles).
	File string `json:"file"`
	// Image is the target repository.
	Image string `json:"image"`
	Due   bool   `json:"due"`
	// Reasons say why it is due, or why not.
	Reasons []string `json:"reasons"`
	// Tag is the unique tag a build publishes: the profile's, or the next release of the
	// same update when the target holds that update built from something else.
	Tag     string `json:"tag"`
	Release int    `json:"release"`
	// Update is the update the profile resolves to now.
	Update     string `json:"update"`
	BaseRef    string `json:"baseRef"`
	BaseDigest string `json:"baseDigest"`
	RebuildID  string `json:"rebuildId"`
	// Current is the image the target holds for this update and content, if any.
	Current *Image `json:"current,omitempty"`
	// Newest is the newest unique tag the target holds for the version and OS.
	Newest string `json:"newest,omitempty"`
}

// Image is an image in the target repository.
type Image struct {
	Tag        string `json:"tag"`
	Digest     string `json:"digest"`
	RebuildID  string `json:"rebuildId,omitempty"`
	BaseDigest string `json:"baseDigest,omitempty"`
}

// Check compares a plan with its target repository, and asks r whether an image that
// did not change is due for its vulnerability scan.
func Check(ctx context.Context, reg registry.Options, plan *build.Plan, r Rescan) (*Status, error) {
	prof := plan.Profile
	st := &Status{
		Profile:    prof.Name,
		File:       prof.File,
		Image:      plan.Repository,
		Tag:        plan.Tags[0].Tag,
		Release:    prof.Release,
		Update:     updateString(prof.Tag()),
		BaseRef:    plan.Base.Ref,
		BaseDigest: plan.Base.Digest,
		RebuildID:  plan.RebuildID,
	}
	if plan.Repository == "" {
		return nil, fmt.Errorf("profile %q: no target: set target.repository or --registry", prof.Name)
	}
	held, err := build.ListTags(ctx, reg, plan.Repository)
	if err != nil {
		return nil, fmt.Errorf("profile %q: listing %s: %w", prof.Name, plan.Repository, err)
	}
	same, newest := Classify(held, prof)
	if newest != nil {
		st.Newest = newest.String()
	}

	if len(same) == 0 {
		st.Due = true
		if newest == nil {
			st.Reasons = []string{fmt.Sprintf("%s holds no %s image yet", plan.Repository, prof.Version)}
		} else {
			st.Reasons = []string{fmt.Sprintf("new update %s (the target's newest is %s)", st.Update, newest)}
		}
		return st, nil
	}

	// The update was built before: is one of its releases made of exactly this?
	var latest *Image
	for _, t := range same {
		img, err := read(ctx, reg, plan.Repository, t.String())
		if err != nil {
			return nil, fmt.Errorf("profile %q: reading %s:%s: %w", prof.Name, plan.Repository, t, err)
		}
		if latest == nil {
			latest = img
		}
		if img.RebuildID == plan.RebuildID {
			st.Current, st.Tag, st.Release = img, t.String(), t.Release
			st.Reasons = []string{fmt.Sprintf("up to date: %s is built from the same base, profile and inputs", t)}
			if err := r.rescan(ctx, reg, plan, st); err != nil {
				return nil, fmt.Errorf("profile %q: %w", prof.Name, err)
			}
			return st, nil
		}
	}
	st.Due = true
	switch {
	case latest.BaseDigest != "" && latest.BaseDigest != plan.Base.Digest:
		st.Reasons = append(st.Reasons, fmt.Sprintf("base moved: %s now names %s, %s was built on %s", plan.Base.Ref, plan.Base.Digest, latest.Tag, latest.BaseDigest))
	case latest.RebuildID == "":
		st.Reasons = append(st.Reasons, fmt.Sprintf("%s was not built by wso2img (no rebuild ID)", latest.Tag))
	default:
		st.Reasons = append(st.Reasons, fmt.Sprintf("profile or inputs changed since %s", latest.Tag))
	}
	// Unique tags never move: the changed image is published as the next release.
	next := max(prof.Release, same[0].Release+1)
	st.Release = next
	st.Tag = plan.WithRelease(next).Tags[0].Tag
	st.Reasons = append(st.Reasons, fmt.Sprintf("it will be published as %s (unique tags never move)", st.Tag))
	return st, nil
}

// Classify sorts the target's tags for a profile: same are the unique tags of the
// profile's very update (version, OS, WUM timestamp or level), highest release first;
// newest is the newest unique tag of its version and OS, or nil.
func Classify(held []tags.Tag, prof *profiles.Profile) (same []tags.Tag, newest *tags.Tag) {
	want := prof.Tag()
	for _, t := range held {
		if t.Version != prof.Version || !build.SameOS(t, prof) || !t.Unique() {
			continue
		}
		if newest == nil || tags.Compare(t, *newest) > 0 {
			nt := t
			newest = &nt
		}
		if t.Kind == want.Kind && t.WUM == want.WUM && t.Level == want.Level {
			same = append(same, t)
		}
	}
	tags.SortNewest(same)
	return same, newest
}

// read fetches a tag's digest and the labels wso2img wrote on it.
func read(ctx context.Context, reg registry.Options, repo, tag string) (*Image, error) {
	r, err := reg.ParseReference(repo + ":" + tag)
	if err != nil {
		return nil, err
	}
	desc, err := reg.Get(ctx, r)
	if err != nil || desc == nil {
		return &Image{Tag: tag}, err
	}
	labels, err := registry.Labels(desc)
	if err != nil {
		return nil, err
	}
	return &Image{Tag: tag, Digest: desc.Digest.String(), RebuildID: labels[profiles.LabelRebuildID], BaseDigest: labels[profiles.LabelBaseDigest]}, nil
}

func updateString(t tags.Tag) string {
	t.Release, t.OS, t.OSVersion = 0, "", ""
	return t.String()
}

// Select is the selector of `build --if-changed`: it builds a profile only when Check
// finds it due, under the release Check chose, and otherwise says why not.
func Select(reg registry.Options, r Rescan) func(context.Context, *build.Plan) (build.Selection, error) {
	return func(ctx context.Context, plan *build.Plan) (build.Selection, error) {
		st, err := Check(ctx, reg, plan, r)
		if err != nil {
			return build.Selection{}, err
		}
		if !st.Due {
			return build.Selection{Reasons: st.Reasons, Tag: st.Tag, Digest: st.Current.Digest}, nil
		}
		if st.Release != plan.Profile.Release {
			plan = plan.WithRelease(st.Release)
		}
		return build.Selection{Plan: plan, Reasons: st.Reasons}, nil
	}
}
