package publish

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/units"
)

// pushStage has BuildKit push the image by digest — no tag — unless the registry
// holds it already under its unique tag. A unique tag that names another image stops
// the profile before anything is pushed.
type pushStage struct{ p *Publisher }

func (pushStage) Name() string { return "push" }

func (s pushStage) Run(ctx context.Context, img *Image) (Record, error) {
	plan, reg := img.Plan, s.p.opts.Registry
	if plan.Repository == "" {
		return Record{}, fmt.Errorf("profile %q: no target: set target.repository in the profile, --registry, or --output oci:DIR", plan.Profile.Name)
	}
	repo, err := reg.NewRepository(plan.Repository)
	if err != nil {
		return Record{}, fmt.Errorf("profile %q: target %s: %w", plan.Profile.Name, plan.Repository, err)
	}
	unique := plan.Tags[0].Tag
	existing, err := reg.Digest(ctx, repo.Tag(unique))
	if err != nil {
		return Record{}, fmt.Errorf("profile %q: looking up %s:%s: %w", plan.Profile.Name, plan.Repository, unique, err)
	}
	rec := Record{Status: Done}
	if existing != "" {
		// Compute the digest without pushing: an identical image is kept as it is,
		// another one is refused before anything reaches the registry.
		built, err := s.p.opts.Builder.Digest(ctx, plan)
		if err != nil {
			return Record{}, err
		}
		if built != existing {
			return Record{}, &UniqueTagError{Profile: plan.Profile.Name, Tag: plan.Repository + ":" + unique, Existing: existing, Built: built}
		}
		img.Digest = built
		rec = Record{Status: Kept, Detail: fmt.Sprintf("%s:%s names this very image already: nothing pushed", plan.Repository, unique)}
	} else {
		pulled, note, err := s.p.basePull(ctx, plan, repo)
		if err != nil {
			return Record{}, fmt.Errorf("profile %q: comparing the base's layers with %s: %w", plan.Profile.Name, plan.Repository, err)
		}
		img.BaseBytesPulled = pulled
		if note != "" {
			rec.Notes = append(rec.Notes, note)
		}
		pushed, err := s.p.opts.Builder.Push(ctx, plan)
		if err != nil {
			return Record{}, err
		}
		img.Digest, img.Builder = pushed.Digest, pushed.Builder
		rec.Detail = "pushed by digest to " + plan.Repository
		if pushed.Builder != "" {
			rec.Detail += " (built on " + pushed.Builder + ")"
		}
		if pulled > 0 {
			rec.Detail += fmt.Sprintf("; %s of the base's layers pulled and pushed again", units.Bytes(pulled))
		}
	}
	d := repo.Digest(img.Digest)
	img.Ref = &d
	// The pushed manifest, read once: to measure what was added and to write the tags.
	desc, err := reg.Get(ctx, d)
	if err == nil && desc == nil {
		err = fmt.Errorf("the registry does not have it")
	}
	if err != nil {
		return rec, fmt.Errorf("profile %q: reading back %s: %w", plan.Profile.Name, d, err)
	}
	img.Desc = desc
	var imgs []registry.PlatformImage
	if desc.MediaType.IsIndex() {
		imgs, err = registry.PlatformImages(desc)
	} else {
		// One platform, the plan's: no need to read the config to learn it.
		var one v1.Image
		one, err = desc.Image()
		imgs = []registry.PlatformImage{{Platform: plan.Platforms[0], Digest: desc.Digest, Image: one}}
	}
	if err != nil {
		return rec, fmt.Errorf("profile %q: reading back %s: %w", plan.Profile.Name, d, err)
	}
	if err := measure(img, imgs); err != nil {
		return rec, fmt.Errorf("profile %q: reading back %s: %w", plan.Profile.Name, d, err)
	}
	return rec, nil
}

// measure counts what the image adds to its base: the layers beyond the base's, and
// their compressed bytes (a layer shared by platforms counted once).
func measure(img *Image, imgs []registry.PlatformImage) error {
	seen := map[v1.Hash]bool{}
	for _, pi := range imgs {
		m, err := pi.Image.Manifest()
		if err != nil {
			return err
		}
		baseLayers := 0
		if bc, ok := img.Plan.Configs[pi.Platform]; ok {
			baseLayers = len(bc.RootFS.DiffIDs)
		}
		added := m.Layers[min(baseLayers, len(m.Layers)):]
		img.LayersAdded = len(added)
		for _, l := range added {
			if !seen[l.Digest] {
				seen[l.Digest] = true
				img.BytesAdded += l.Size
			}
		}
	}
	return nil
}

// UniqueTagError is a unique tag that already names another image. Unique tags never
// move: a rebuild that changes the image needs a new release.
type UniqueTagError struct {
	Profile, Tag, Existing, Built string
}

func (e *UniqueTagError) Error() string {
	return fmt.Sprintf("profile %q: unique tag %s already names %s, and this build gives %s: unique tags never move; bump release in the profile to publish a new image",
		e.Profile, e.Tag, e.Existing, e.Built)
}

// exportStage writes the image to a local OCI layout folder or archive.
type exportStage struct{ p *Publisher }

func (exportStage) Name() string { return "export" }

func (s exportStage) Run(ctx context.Context, img *Image) (Record, error) {
	out := s.p.opts.Output
	digest, err := s.p.opts.Builder.Export(ctx, img.Plan, out)
	if err != nil {
		return Record{}, err
	}
	img.Digest, img.Output, img.LayersAdded = digest, out.Path, 1
	return Record{Status: Done, Detail: "written to " + out.Path}, nil
}
