package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// IsNotFound reports whether err is a registry's 404: the tag, manifest or repository
// does not exist.
func IsNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// Get reads the manifest (or index) ref names; nil, nil when it does not exist.
func (o Options) Get(ctx context.Context, ref name.Reference) (*remote.Descriptor, error) {
	desc, err := remote.Get(ref, o.Remote(ctx)...)
	if IsNotFound(err) {
		return nil, nil
	}
	return desc, err
}

// Digest returns the digest ref names (a HEAD request), or "" when it does not exist.
func (o Options) Digest(ctx context.Context, ref name.Reference) (string, error) {
	desc, err := remote.Head(ref, o.Remote(ctx)...)
	if IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return desc.Digest.String(), nil
}

// Suffixes of the tags cosign stores beside an image, named after its digest.
const (
	SigSuffix  = ".sig"
	AttSuffix  = ".att"
	SBOMSuffix = ".sbom"
)

// CosignSuffixes are every kind of artifact cosign stores beside an image.
var CosignSuffixes = []string{SigSuffix, AttSuffix, SBOMSuffix}

// CosignTag is where cosign stores an artifact (suffix SigSuffix, AttSuffix or
// SBOMSuffix) of the image with digest ("sha256:…") in repo: sha256-<hex>.sig.
func CosignTag(repo name.Repository, digest, suffix string) name.Tag {
	return repo.Tag(strings.Replace(digest, ":", "-", 1) + suffix)
}

// PlatformImage is one image behind a manifest or index.
type PlatformImage struct {
	// Platform is normalised, "linux/amd64", "linux/arm64/v8".
	Platform string
	Digest   v1.Hash
	Image    v1.Image
}

// PlatformImages lists the images behind a descriptor: the image itself, or every
// platform image of an index, sorted by platform. Attestation manifests (platform
// unknown/unknown) and nested indexes are passed over; an image entry that names no
// platform is an error, since no runtime would pick it and no check can place it.
func PlatformImages(desc *remote.Descriptor) ([]PlatformImage, error) {
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, fmt.Errorf("reading the config of %s: %w", desc.Digest, err)
		}
		return []PlatformImage{{Platform: formatPlatform(cf.OS, cf.Architecture, cf.Variant), Digest: desc.Digest, Image: img}}, nil
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []PlatformImage
	for _, m := range im.Manifests {
		if !m.MediaType.IsImage() {
			continue
		}
		if m.Platform == nil || m.Platform.OS == "" {
			return nil, &NoPlatformError{Index: desc.Digest.String(), Image: m.Digest.String()}
		}
		if m.Platform.OS == "unknown" {
			continue // an attestation manifest
		}
		img, err := idx.Image(m.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, PlatformImage{Platform: formatPlatform(m.Platform.OS, m.Platform.Architecture, m.Platform.Variant), Digest: m.Digest, Image: img})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("index %s lists no platform image", desc.Digest)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Platform < out[j].Platform })
	return out, nil
}

// NoPlatformError is an index that lists an image without naming its platform: no
// runtime would pick it, and no check can say which platform it is audited as.
type NoPlatformError struct{ Index, Image string }

func (e *NoPlatformError) Error() string {
	return fmt.Sprintf("index %s lists image %s with no platform", e.Index, e.Image)
}

func formatPlatform(os, arch, variant string) string {
	return platforms.Format(platforms.Normalize(platforms.Platform{OS: os, Architecture: arch, Variant: variant}))
}

// Labels reads the config labels of the image behind desc (for an index, of its first
// platform image: wso2img writes the same labels on every platform).
func Labels(desc *remote.Descriptor) (map[string]string, error) {
	imgs, err := PlatformImages(desc)
	if err != nil {
		return nil, err
	}
	cf, err := imgs[0].Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	return cf.Config.Labels, nil
}

// BlobExists asks a repository whether it holds a blob (HEAD /v2/<repo>/blobs/<digest>).
func (o Options) BlobExists(ctx context.Context, d name.Digest) (bool, error) {
	l, err := remote.Layer(d, o.Remote(ctx)...)
	if err != nil {
		return false, err
	}
	e, ok := l.(interface{ Exists() (bool, error) })
	if !ok {
		return false, fmt.Errorf("go-containerregistry's remote layer cannot say whether %s exists", d)
	}
	return e.Exists()
}
