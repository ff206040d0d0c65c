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

// Copy copies the image src (a reference by digest) to dst (a reference by tag), with
// the cosign signature, attestations and SBOM stored for that digest.
func Copy(ctx context.Context, reg registry.Options, src, dst string) (digest string, copied []string, err error) {
	from, err := reg.ParseReference(src)
	if err != nil {
		return "", nil, err
	}
	to, err := reg.ParseReference(dst)
	if err != nil {
		return "", nil, err
	}
	desc, err := remote.Get(from, reg.Remote(ctx)...)
	if err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", src, err)
	}
	if err := write(ctx, reg, desc, to); err != nil {
		return "", nil, fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	for _, suffix := range registry.CosignSuffixes {
		sref := registry.CosignTag(from.Context(), desc.Digest.String(), suffix)
		sdesc, err := reg.Get(ctx, sref)
		if err != nil {
			return "", nil, fmt.Errorf("reading %s: %w", sref, err)
		}
		if sdesc == nil {
			continue
		}
		if err := write(ctx, reg, sdesc, registry.CosignTag(to.Context(), desc.Digest.String(), suffix)); err != nil {
			return "", nil, fmt.Errorf("copying %s: %w", sref, err)
		}
		copied = append(copied, suffix)
	}
	return desc.Digest.String(), copied, nil
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
