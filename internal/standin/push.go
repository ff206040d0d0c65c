package standin

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Push pushes img to ref ("127.0.0.1:5000/wso2is:5.8.0") and returns its digest
// ("sha256:…"). insecure allows plain HTTP, for loopback registries.
func Push(ctx context.Context, ref string, img v1.Image, insecure bool) (string, error) {
	r, opts, err := target(ctx, ref, insecure)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, opts...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return d.String(), nil
}

// PushIndex pushes idx and every image in it to ref and returns the index digest.
func PushIndex(ctx context.Context, ref string, idx v1.ImageIndex, insecure bool) (string, error) {
	r, opts, err := target(ctx, ref, insecure)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(r, idx, opts...); err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	return d.String(), nil
}

func target(ctx context.Context, ref string, insecure bool) (name.Reference, []remote.Option, error) {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing %q: %w", ref, err)
	}
	return r, []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}, nil
}
