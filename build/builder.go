package build

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/moby/buildkit/client"
)

// Builder builds plans on one BuildKit daemon and publishes them.
type Builder struct {
	opts Options
	s    *solver
}

// NewBuilder builds on c. Every solve's progress is sent to status (which may be nil);
// call Wait before closing status.
func NewBuilder(opts Options, c *client.Client, status chan<- *client.SolveStatus) *Builder {
	return &Builder{opts: opts, s: &solver{c: c, status: status}}
}

// Wait returns once every solve's progress has been sent to the status channel.
func (b *Builder) Wait() { b.s.forwards.Wait() }

// Step runs between pushing an image by digest and writing its tags: signing slots in
// here, so that no tag ever names an unsigned image.
type Step func(ctx context.Context, r *Result) error

// Result is what a build did, in the shape of `build --json`.
type Result struct {
	Profile string `json:"profile"`
	// Image is the repository pushed to ("" for local output).
	Image  string `json:"image,omitempty"`
	Digest string `json:"digest"`
	// Tags are the tags now naming Digest, unique first.
	Tags []string `json:"tags"`
	Base struct {
		Ref    string `json:"ref"`
		Digest string `json:"digest"`
	} `json:"base"`
	Signed bool `json:"signed"`
	// LayersAdded counts the layers the image has beyond the base's (per platform).
	LayersAdded int `json:"layersAdded"`
	// BytesAdded is the compressed size of the added layers, summed over platforms.
	BytesAdded int64 `json:"bytesAdded"`
	// Pushed is false when the registry already held this very image under its unique
	// tag: nothing was pushed again.
	Pushed    bool     `json:"pushed"`
	Platforms []string `json:"platforms"`
	// Output is the OCI folder or archive written, for local output.
	Output string `json:"output,omitempty"`
	// Skipped says the profile was not built (build --if-changed: the target holds it
	// already); Reasons say why a profile was, or was not, built.
	Skipped bool     `json:"skipped,omitempty"`
	Reasons []string `json:"reasons,omitempty"`

	// Ref is the pushed image by digest; nil for local output.
	Ref  *name.Digest `json:"-"`
	Plan *Plan        `json:"-"`
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

// Build builds the plan and publishes it to out. For a registry: unless the registry
// already holds this image under its unique tag, it pushes by digest, runs afterPush
// (signing), and only then writes the tags. A unique tag that names another digest
// stops the build before anything is pushed.
func (b *Builder) Build(ctx context.Context, plan *Plan, out Output, afterPush Step) (*Result, error) {
	r := &Result{Profile: plan.Profile.Name, Image: plan.Repository, Platforms: plan.Platforms, Plan: plan, Reasons: plan.Reasons}
	r.Base.Ref, r.Base.Digest = plan.Base.Ref, plan.Base.Digest
	if out.Kind != "registry" {
		ex, err := localExport(plan, out)
		if err != nil {
			return nil, fmt.Errorf("profile %q: %w", plan.Profile.Name, err)
		}
		if r.Digest, err = b.s.solve(ctx, plan, ex); err != nil {
			return nil, err
		}
		r.Output = out.Path
		r.LayersAdded = 1
		return r, nil
	}
	if plan.Repository == "" {
		return nil, fmt.Errorf("profile %q: no target: set target.repository in the profile, --registry, or --output oci:DIR", plan.Profile.Name)
	}
	repo, err := b.opts.Registry.NewRepository(plan.Repository)
	if err != nil {
		return nil, fmt.Errorf("profile %q: target %s: %w", plan.Profile.Name, plan.Repository, err)
	}
	unique := plan.Tags[0].Tag
	existing, err := b.tagDigest(ctx, repo.Tag(unique))
	if err != nil {
		return nil, fmt.Errorf("profile %q: looking up %s:%s: %w", plan.Profile.Name, plan.Repository, unique, err)
	}

	if existing != "" {
		// Compute the digest without pushing: an identical image is a no-op, another one
		// is refused before anything reaches the registry.
		built, err := b.s.solve(ctx, plan, registryExport(plan, false, false))
		if err != nil {
			return nil, err
		}
		if built != existing {
			return nil, &UniqueTagError{Profile: plan.Profile.Name, Tag: plan.Repository + ":" + unique, Existing: existing, Built: built}
		}
		r.Digest = built
		// Its tags were written after it was signed, when signing was on then.
		if r.Signed, err = b.hasSignature(ctx, repo.Digest(built)); err != nil {
			return nil, err
		}
	} else {
		insecure := b.opts.Registry.IsInsecure(repo.RegistryStr())
		if r.Digest, err = b.s.solve(ctx, plan, registryExport(plan, true, insecure)); err != nil {
			return nil, err
		}
		r.Pushed = true
	}
	d := repo.Digest(r.Digest)
	r.Ref = &d
	// The pushed manifest, read once: to count what was added and to write the tags.
	desc, err := remote.Get(d, b.opts.Registry.Remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("profile %q: reading back %s: %w", plan.Profile.Name, d, err)
	}
	if err := b.measure(r, desc); err != nil {
		return nil, err
	}
	// A step (signing) runs on what this build pushed, and on an image already there
	// that was never signed; never twice on one image.
	if afterPush != nil && (r.Pushed || !r.Signed) {
		if err := afterPush(ctx, r); err != nil {
			return r, fmt.Errorf("profile %q: %s was pushed but not tagged: %w", plan.Profile.Name, d, err)
		}
	}
	if err := b.tag(ctx, r, desc); err != nil {
		return r, err
	}
	return r, nil
}

// hasSignature reports whether a cosign signature is stored for the image (the tag
// sha256-<hex>.sig beside it); it does not check whose it is — `wso2img verify` does.
func (b *Builder) hasSignature(ctx context.Context, d name.Digest) (bool, error) {
	repo := d.Context()
	if alt := os.Getenv("COSIGN_REPOSITORY"); alt != "" {
		// cosign (and wso2img's signing) stores signatures there instead.
		r, err := b.opts.Registry.NewRepository(alt)
		if err != nil {
			return false, fmt.Errorf("COSIGN_REPOSITORY %q: %w", alt, err)
		}
		repo = r
	}
	sig := repo.Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	found, err := b.tagDigest(ctx, sig)
	if err != nil {
		return false, fmt.Errorf("looking for the signature of %s: %w", d, err)
	}
	return found != "", nil
}

// tagDigest returns the digest a tag names, or "" when the tag does not exist.
func (b *Builder) tagDigest(ctx context.Context, ref name.Reference) (string, error) {
	desc, err := remote.Head(ref, b.opts.Registry.Remote(ctx)...)
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// tag writes the unique tag (unless it is already there), then the floating ones. The
// unique tag is checked once more just before, so two racing builds cannot move it.
func (b *Builder) tag(ctx context.Context, r *Result, desc *remote.Descriptor) error {
	plan := r.Plan
	for _, t := range plan.Tags {
		ref := r.Ref.Context().Tag(t.Tag)
		if t.Unique {
			existing, err := b.tagDigest(ctx, ref)
			if err != nil {
				return fmt.Errorf("profile %q: looking up %s: %w", plan.Profile.Name, ref, err)
			}
			if existing != "" && existing != r.Digest {
				return &UniqueTagError{Profile: plan.Profile.Name, Tag: ref.String(), Existing: existing, Built: r.Digest}
			}
			if existing == r.Digest {
				r.Tags = append(r.Tags, t.Tag)
				continue
			}
		}
		if err := remote.Tag(ref, desc, b.opts.Registry.Remote(ctx)...); err != nil {
			return fmt.Errorf("profile %q: tagging %s: %w", plan.Profile.Name, ref, err)
		}
		r.Tags = append(r.Tags, t.Tag)
	}
	return nil
}

// measure reads the pushed manifests and counts what was added to the base: the
// layers beyond the base's, and their compressed bytes.
func (b *Builder) measure(r *Result, desc *remote.Descriptor) error {
	var images []v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, m := range im.Manifests {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return err
			}
			images = append(images, img)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return err
		}
		images = append(images, img)
	}
	seen := map[v1.Hash]bool{}
	for _, img := range images {
		m, err := img.Manifest()
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		pl := cf.OS + "/" + cf.Architecture
		if cf.Variant != "" {
			pl += "/" + cf.Variant
		}
		baseLayers := 0
		if bc, ok := r.Plan.Configs[pl]; ok {
			baseLayers = len(bc.RootFS.DiffIDs)
		}
		added := m.Layers[min(baseLayers, len(m.Layers)):]
		r.LayersAdded = len(added)
		for _, l := range added {
			if !seen[l.Digest] {
				seen[l.Digest] = true
				r.BytesAdded += l.Size
			}
		}
	}
	return nil
}

// String is a one-line summary of the result.
func (r *Result) String() string {
	where := r.Image + "@" + r.Digest
	if r.Output != "" {
		where = r.Output + " (" + r.Digest + ")"
	}
	return fmt.Sprintf("%s: %s tags %s", r.Profile, where, strings.Join(r.Tags, ", "))
}
