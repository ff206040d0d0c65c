package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

// tagStage writes the tags, unique first. A unique tag is written only where it is
// absent (it never moves) and read again afterwards, so that a concurrent writer that
// won the race is noticed. A floating tag moves only forward: to an update at least as
// new as the one the image it names was built from.
type tagStage struct{ p *Publisher }

func (tagStage) Name() string { return "tag" }

func (s tagStage) Run(ctx context.Context, img *Image) (Record, error) {
	plan, reg := img.Plan, s.p.opts.Registry
	repo := img.Ref.Context()
	var written, kept []string
	rec := Record{}
	for _, t := range plan.Tags {
		ref := repo.Tag(t.Tag)
		if t.Unique {
			wrote, err := s.unique(ctx, img, ref)
			if err != nil {
				return rec, err
			}
			if wrote {
				written = append(written, t.Tag)
			} else {
				kept = append(kept, t.Tag)
			}
			img.Tags = append(img.Tags, t.Tag)
			continue
		}
		move, note, err := floatingMoves(ctx, reg, ref, img.Digest, plan)
		if err != nil {
			return rec, fmt.Errorf("profile %q: reading floating tag %s: %w", plan.Profile.Name, ref, err)
		}
		switch {
		case note != "":
			rec.Notes = append(rec.Notes, note)
		case !move:
			kept = append(kept, t.Tag)
			img.Tags = append(img.Tags, t.Tag)
		default:
			if err := remote.Tag(ref, img.Desc, reg.Remote(ctx)...); err != nil {
				return rec, fmt.Errorf("profile %q: tagging %s: %w", plan.Profile.Name, ref, err)
			}
			written = append(written, t.Tag)
			img.Tags = append(img.Tags, t.Tag)
		}
	}
	rec.Status = Done
	if len(written) == 0 {
		rec.Status = Kept
	}
	var parts []string
	if len(written) > 0 {
		parts = append(parts, "wrote "+strings.Join(written, ", "))
	}
	if len(kept) > 0 {
		parts = append(parts, "already there: "+strings.Join(kept, ", "))
	}
	rec.Detail = strings.Join(parts, "; ")
	return rec, nil
}

// unique writes a unique tag unless it names the image already, then reads it again.
// It reports whether it wrote the tag.
func (s tagStage) unique(ctx context.Context, img *Image, ref name.Tag) (bool, error) {
	reg, prof := s.p.opts.Registry, img.Plan.Profile.Name
	existing, err := reg.Digest(ctx, ref)
	if err != nil {
		return false, fmt.Errorf("profile %q: looking up %s: %w", prof, ref, err)
	}
	switch existing {
	case img.Digest:
		return false, nil
	case "":
	default:
		// Written by someone else since the push stage looked.
		return false, &UniqueTagError{Profile: prof, Tag: ref.String(), Existing: existing, Built: img.Digest}
	}
	if err := remote.Tag(ref, img.Desc, reg.Remote(ctx)...); err != nil {
		return false, fmt.Errorf("profile %q: tagging %s: %w", prof, ref, err)
	}
	after, err := reg.Digest(ctx, ref)
	if err != nil {
		return true, fmt.Errorf("profile %q: reading back %s: %w", prof, ref, err)
	}
	if after != img.Digest {
		return true, &RaceError{Profile: prof, Tag: ref.String(), Ours: img.Digest, Theirs: after}
	}
	return true, nil
}

// RaceError is a unique tag that names another image right after wso2img wrote it:
// another writer tagged at the same moment and won.
type RaceError struct {
	Profile, Tag, Ours, Theirs string
}

func (e *RaceError) Error() string {
	if e.Theirs == "" {
		return fmt.Sprintf("profile %q: unique tag %s was written for %s but is gone on reading it back: another writer deleted it", e.Profile, e.Tag, e.Ours)
	}
	return fmt.Sprintf("profile %q: unique tag %s names %s right after wso2img tagged %s: another writer won the race; %s stays untouched by this run (the image is pushed and signed by digest only)",
		e.Profile, e.Tag, e.Theirs, e.Ours, e.Tag)
}

// floatingMoves decides whether a floating tag may move to digest: yes when it is
// absent or names an image of an update (and release) no newer than the plan's. When
// it names a newer one, it stays, and note says so.
func floatingMoves(ctx context.Context, reg registry.Options, ref name.Tag, digest string, plan *build.Plan) (move bool, note string, err error) {
	desc, err := reg.Get(ctx, ref)
	if err != nil || desc == nil {
		return desc == nil && err == nil, "", err
	}
	if desc.Digest.String() == digest {
		return false, "", nil
	}
	labels, err := registry.Labels(desc)
	if err != nil {
		return false, "", err
	}
	theirs, err := tags.Parse(labels[profiles.LabelVersion])
	if err != nil || !theirs.Unique() {
		// Not an image wso2img built: nothing says it is newer.
		return true, "", nil
	}
	ours := plan.Profile.Tag()
	if tags.Compare(theirs, ours) > 0 {
		return false, fmt.Sprintf("floating tag %s left on %s: it names %s, newer than %s", ref.TagStr(), desc.Digest, theirs, ours), nil
	}
	return true, "", nil
}
