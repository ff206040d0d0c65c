package publish

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/wso2img/wso2img/build"
	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/internal/units"
	"github.com/wso2img/wso2img/mirror"
	"github.com/wso2img/wso2img/profiles"
)

// DefaultBaseCache is the repository prefix, in the target registry, under which bases
// from other registries are kept: <target registry>/wso2img-bases/<vendor path>.
const DefaultBaseCache = "wso2img-bases"

// baseStage keeps a copy of the base in the target registry when the base lives in
// another one, and has the build take the base from there: BuildKit's push then mounts
// the base's layers across repositories instead of pulling them from the vendor and
// uploading them, so a build costs what it adds also when the vendor's registry is not
// the user's. The copy is made by digest, after the pin and base.verify were checked
// against the vendor's image, with the base's signature and attestations; only the
// blobs the target lacks travel, so a WSO2 update copies the layers that changed.
type baseStage struct{ p *Publisher }

func (baseStage) Name() string { return "base" }

func (s baseStage) Run(ctx context.Context, img *Image) (Record, error) {
	plan, reg := img.Plan, s.p.opts.Registry
	cache, why := s.p.baseCacheRepo(plan)
	if cache == "" {
		return Record{Status: Off, Detail: why}, nil
	}
	ref := cache + "@" + plan.Base.Digest
	d, err := reg.NewDigest(ref)
	if err != nil {
		return Record{}, fmt.Errorf("profile %q: base cache %s: %w", plan.Profile.Name, ref, err)
	}
	have, err := reg.Digest(ctx, d)
	if err != nil {
		return Record{}, fmt.Errorf("profile %q: looking for the base in %s: %w", plan.Profile.Name, cache, err)
	}
	if have == plan.Base.Digest {
		plan.Base.Pull = ref
		return Record{Status: Kept, Detail: "the base is in the target registry already: " + ref}, nil
	}
	dst := ref
	if _, tag := profiles.SplitTag(plan.Base.Ref); tag != "" {
		dst = cache + ":" + tag // a tag keeps the copy from registries' garbage collection
	}
	c, err := mirror.Copy(ctx, reg, plan.Base.Pull, dst)
	if err != nil {
		return Record{}, fmt.Errorf("profile %q: copying the base into the target registry: %w", plan.Profile.Name, err)
	}
	if c.Digest != plan.Base.Digest {
		return Record{}, fmt.Errorf("profile %q: copying the base: %s names %s now, not the pinned %s", plan.Profile.Name, plan.Base.Pull, c.Digest, plan.Base.Digest)
	}
	plan.Base.Pull = ref
	img.BaseBytesCopied = c.Bytes
	detail := fmt.Sprintf("copied %d blob(s), %s, of %s into %s", c.Blobs, units.Bytes(c.Bytes), plan.Base.Ref, cache)
	if c.Present > 0 {
		detail += fmt.Sprintf(" (%d blob(s), %s, were there)", c.Present, units.Bytes(c.PresentBytes))
	}
	if len(c.Artifacts) > 0 {
		detail += ", with " + strings.Join(c.Artifacts, ", ")
	}
	return Record{Status: Done, Detail: detail}, nil
}

// baseCacheRepo is the repository that keeps plan's base in the target registry, or ""
// and why none is used.
func (p *Publisher) baseCacheRepo(plan *build.Plan) (string, string) {
	bc := plan.Profile.BaseCache
	if p.opts.BaseCache != nil {
		bc = *p.opts.BaseCache
	}
	if bc.Off {
		return "", "base cache off (--base-cache=false or baseCache: false): BuildKit pulls the base's layers it pushes"
	}
	target := registryOf(plan.Repository)
	if registryOf(plan.Base.Pull) == target {
		return "", "the base is in the target registry: its layers are mounted"
	}
	prefix := bc.Prefix
	if prefix == "" {
		prefix = target + "/" + DefaultBaseCache
	}
	if registryOf(prefix) != target {
		return "", fmt.Sprintf("the base cache %s is not in the target registry %s: it could not be mounted from", prefix, target)
	}
	_, path, _ := strings.Cut(repositoryOf(plan.Base.Ref), "/")
	return prefix + "/" + path, ""
}

// registryOf is the registry host of a reference, as go-containerregistry names it.
func registryOf(ref string) string {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		repo, err := name.NewRepository(ref)
		if err != nil {
			return ""
		}
		return repo.RegistryStr()
	}
	return r.Context().RegistryStr()
}

// repositoryOf is a reference without its tag or digest, the registry's name included
// (docker.io's library/ too).
func repositoryOf(ref string) string {
	repo, _ := profiles.SplitTag(ref)
	if r, err := name.NewRepository(repo); err == nil {
		return r.Name()
	}
	return repo
}

// basePull works out what BuildKit will pull of the base to push the image into repo:
// the base's layers repo lacks, unless they can be mounted from the base's repository
// in the same registry. A registry that refuses cross-repository mounts (some do) is
// found by asking it for one mount, and named in the note.
func (p *Publisher) basePull(ctx context.Context, plan *build.Plan, repo name.Repository) (int64, string, error) {
	reg := p.opts.Registry
	pull, err := reg.NewDigest(plan.Base.Pull)
	if err != nil {
		return 0, "", err
	}
	desc, err := reg.Get(ctx, pull)
	if err != nil || desc == nil {
		return 0, "", fmt.Errorf("reading the base %s: %v", pull, err)
	}
	imgs, err := registry.PlatformImages(desc)
	if err != nil {
		return 0, "", err
	}
	sameRegistry := pull.Context().RegistryStr() == repo.RegistryStr()
	mountable := sameRegistry
	probed := false
	var pulled int64
	seen := map[string]bool{}
	for _, pi := range imgs {
		if _, built := plan.Configs[pi.Platform]; !built {
			continue
		}
		m, err := pi.Image.Manifest()
		if err != nil {
			return 0, "", err
		}
		for _, l := range m.Layers {
			if seen[l.Digest.String()] {
				continue
			}
			seen[l.Digest.String()] = true
			if present, err := reg.BlobExists(ctx, repo.Digest(l.Digest.String())); err != nil {
				return 0, "", err
			} else if present {
				continue
			}
			if sameRegistry && !probed {
				probed = true
				if mountable, err = reg.Mount(ctx, pull.Context().Digest(l.Digest.String()), repo); err != nil {
					return 0, "", err
				}
				if mountable {
					continue
				}
			}
			if !mountable {
				pulled += l.Size
			}
		}
	}
	note := ""
	if sameRegistry && !mountable {
		note = fmt.Sprintf("the target registry %s refused a cross-repository mount: BuildKit pulls the base's layers from %s and uploads them into %s (%s)",
			repo.RegistryStr(), pull.Context(), repo, units.Bytes(pulled))
	}
	return pulled, note, nil
}
