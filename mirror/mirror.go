// Package mirror copies WSO2 base images into the user's own registry: by digest, every
// platform, with the cosign signature and attestations stored beside them, so that a
// base stays buildable (and verifiable) after WSO2 deletes its tag — which it does weekly.
//
// It copies registry content as it is, never rebuilding or re-signing anything.
package mirror

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/registry"
)

// Result is one base copied.
type Result struct {
	Profile string `json:"profile"`
	// From is the base as the profile names it; Source where it was read from.
	From   string `json:"from"`
	Source string `json:"source"`
	// To is the copy, by tag; Digest is the same at both ends.
	To     string `json:"to"`
	Digest string `json:"digest"`
	// Copied lists the cosign artifacts copied beside the image (".sig", ".att", ".sbom").
	Copied []string `json:"copied"`
	// Blobs and Bytes count what the destination lacked and got.
	Blobs int   `json:"blobs"`
	Bytes int64 `json:"bytes"`
	// MirrorFlag is the --mirror setting that makes builds pull from the copy.
	MirrorFlag string `json:"mirrorFlag"`
}

// Destination is where a base lands under a mirror prefix: the prefix, then the base's
// repository path without its registry (registry.wso2.com/wso2-is/is:7.1.0.3 under
// registry.acme.com/mirror is registry.acme.com/mirror/wso2-is/is:7.1.0.3), so that
// "--mirror registry.wso2.com=registry.acme.com/mirror" finds it.
func Destination(prefix, ref string) (string, string, error) {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return "", "", fmt.Errorf("%s has no registry host to mirror", ref)
	}
	prefix = strings.TrimSuffix(prefix, "/")
	return prefix + "/" + rest, host + "=" + prefix, nil
}

// Copied is what one copy moved.
type Copied struct {
	// Digest is the image's digest, the same at both ends.
	Digest string `json:"digest"`
	// Artifacts lists the cosign artifacts copied beside the image (".sig", ".att",
	// ".sbom").
	Artifacts []string `json:"artifacts"`
	// Blobs and Bytes count the blobs (layers and configs, compressed) of the image that
	// the destination lacked and got; Present and PresentBytes those it had already.
	Blobs        int   `json:"blobs"`
	Bytes        int64 `json:"bytes"`
	Present      int   `json:"present"`
	PresentBytes int64 `json:"presentBytes"`
}

// Copy copies the image src (a reference by digest) to dst (a reference by tag, or by
// the same digest), with the cosign signature, attestations and SBOM stored for that
// digest. Only the blobs dst's repository lacks are sent, streamed from registry to
// registry: a WSO2 update that changed one layer copies that layer.
func Copy(ctx context.Context, reg registry.Options, src, dst string) (*Copied, error) {
	from, err := reg.ParseReference(src)
	if err != nil {
		return nil, err
	}
	to, err := reg.ParseReference(dst)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(from, reg.Remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	c := &Copied{Digest: desc.Digest.String(), Artifacts: []string{}}
	if err := c.count(ctx, reg, desc, to.Context()); err != nil {
		return nil, fmt.Errorf("comparing %s with %s: %w", src, to.Context(), err)
	}
	if err := write(ctx, reg, desc, to); err != nil {
		return nil, fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	for _, suffix := range registry.CosignSuffixes {
		sref := registry.CosignTag(from.Context(), c.Digest, suffix)
		sdesc, err := reg.Get(ctx, sref)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", sref, err)
		}
		if sdesc == nil {
			continue
		}
		if err := write(ctx, reg, sdesc, registry.CosignTag(to.Context(), c.Digest, suffix)); err != nil {
			return nil, fmt.Errorf("copying %s: %w", sref, err)
		}
		c.Artifacts = append(c.Artifacts, suffix)
	}
	return c, nil
}

// count sorts the blobs of desc into those repo lacks and those it has.
func (c *Copied) count(ctx context.Context, reg registry.Options, desc *remote.Descriptor, repo name.Repository) error {
	blobs, err := blobsOf(desc)
	if err != nil {
		return err
	}
	for _, b := range blobs {
		have, err := reg.BlobExists(ctx, repo.Digest(b.Digest.String()))
		if err != nil {
			return err
		}
		if have {
			c.Present++
			c.PresentBytes += b.Size
		} else {
			c.Blobs++
			c.Bytes += b.Size
		}
	}
	return nil
}

// blobsOf lists the config and layer blobs of every image behind desc, each once.
func blobsOf(desc *remote.Descriptor) ([]v1.Descriptor, error) {
	var images []v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			if !m.MediaType.IsImage() {
				continue
			}
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, err
			}
			images = append(images, img)
		}
	} else {
		img, err := desc.Image()
		if err != nil {
			return nil, err
		}
		images = append(images, img)
	}
	seen := map[v1.Hash]bool{}
	var out []v1.Descriptor
	for _, img := range images {
		m, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !seen[d.Digest] {
				seen[d.Digest] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// write copies an image or index, keeping its manifest bytes (and so its digest).
func write(ctx context.Context, reg registry.Options, desc *remote.Descriptor, to name.Reference) error {
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return remote.WriteIndex(to, idx, reg.Remote(ctx)...)
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return remote.Write(to, img, reg.Remote(ctx)...)
}
