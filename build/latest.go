package build

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/registry"
	"github.com/wso2img/wso2img/profiles"
	"github.com/wso2img/wso2img/tags"
)

// maxDigestProbes bounds how many unique tags are looked up to find which update a
// floating base tag names.
const maxDigestProbes = 50

// resolveLatest turns `wum: latest` / `level: latest` into the newest update WSO2
// published for the profile's version and OS, read from the base repository's tags.
// When the profile names a floating base tag itself (5.8.0-alpine3.10), the update is
// the one whose unique tag names the same digest.
func (p *Planner) resolveLatest(ctx context.Context, prof *profiles.Profile) (*profiles.Profile, error) {
	repoRef, explicitTag := profiles.SplitTag(prof.Base.Image)
	pullRepo := p.pullName(prof, repoRef)
	repo, err := p.opts.Registry.NewRepository(pullRepo)
	if err != nil {
		return nil, fmt.Errorf("profile %q: base repository %s: %w", prof.Name, pullRepo, err)
	}
	candidates, err := UpstreamUpdates(ctx, p.opts.Registry, repo.String(), prof, prof.Update.Latest)
	if err != nil {
		return nil, fmt.Errorf("profile %q: listing the tags of %s for the latest update: %w", prof.Name, pullRepo, err)
	}
	if len(candidates) == 0 {
		return nil, fmt.Errorf("profile %q: %s has no %s tag for %s%s: nothing to follow", prof.Name, pullRepo, kindName(prof.Update.Latest), prof.Version, (tags.Tag{OS: prof.OS, OSVersion: prof.OSVersion}).Suffix())
	}
	chosen := candidates[0]
	if explicitTag != "" {
		// A floating tag names one of the updates: find it by digest.
		want, err := remote.Head(repo.Tag(explicitTag), p.opts.Registry.Remote(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("profile %q: resolving base %s:%s: %w", prof.Name, pullRepo, explicitTag, err)
		}
		found := false
		for i, c := range candidates {
			if i == maxDigestProbes {
				break
			}
			d, err := remote.Head(repo.Tag(c.String()), p.opts.Registry.Remote(ctx)...)
			if err == nil && d.Digest == want.Digest {
				chosen, found = c, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("profile %q: base %s:%s (%s) is not named by any %s tag of %s, so its update is unknown: name the update in the profile",
				prof.Name, pullRepo, explicitTag, want.Digest, kindName(prof.Update.Latest), prof.Version)
		}
	}
	u := profiles.Update{WUM: chosen.WUM, Level: chosen.Level}
	return prof.WithUpdate(u, chosen.String()), nil
}

// UpstreamUpdates lists the unique tags of repo for the profile's version and OS whose
// update is of kind ("wum" or "level"), newest first (then highest release first). Tags
// of other shapes (latest, signatures, malformed ones) are ignored.
func UpstreamUpdates(ctx context.Context, reg registry.Options, repo string, prof *profiles.Profile, kind string) ([]tags.Tag, error) {
	all, err := ListTags(ctx, reg, repo)
	if err != nil {
		return nil, err
	}
	var out []tags.Tag
	for _, t := range all {
		if t.Version != prof.Version || !SameOS(t, prof) || !t.Unique() || t.Kind.String() != kind {
			continue
		}
		out = append(out, t)
	}
	tags.SortNewest(out)
	return out, nil
}

// ListTags lists the WSO2-scheme tags of a repository, skipping every other tag
// (latest, cosign's sha256-….sig, malformed ones). A repository that does not exist
// has none.
func ListTags(ctx context.Context, reg registry.Options, repo string) ([]tags.Tag, error) {
	r, err := reg.NewRepository(repo)
	if err != nil {
		return nil, err
	}
	names, err := reg.ListTags(ctx, r)
	if err != nil {
		return nil, err
	}
	var out []tags.Tag
	for _, n := range names {
		if t, err := tags.Parse(n); err == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// SameOS reports whether a tag is of the profile's OS (ubuntu carries no suffix).
func SameOS(t tags.Tag, prof *profiles.Profile) bool {
	os := prof.OS
	if os == "ubuntu" {
		os = ""
	}
	return t.OS == os && t.OSVersion == prof.OSVersion
}

func kindName(k string) string {
	if k == "wum" {
		return "WUM-timestamp"
	}
	return "update-level"
}
