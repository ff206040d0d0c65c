package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Mount asks the registry of to for a cross-repository blob mount of blob (a digest in
// another repository of the same registry) into to, and reports whether it mounted it.
// A registry that answers with an upload session instead refuses such mounts (some
// do); the session is cancelled and Mount reports false. A mounted blob stays: it is
// what a push into to would have mounted anyway.
func (o Options) Mount(ctx context.Context, blob name.Digest, to name.Repository) (bool, error) {
	if blob.Context().RegistryStr() != to.RegistryStr() {
		return false, fmt.Errorf("mounting %s into %s: a mount works only within one registry", blob, to)
	}
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	auth, err := authn.Resolve(ctx, kc, to.Registry)
	if err != nil {
		return false, err
	}
	scopes := []string{to.Scope(transport.PushScope), blob.Context().Scope(transport.PullScope)}
	rt, err := transport.NewWithContext(ctx, to.Registry, auth, o.transport(), scopes)
	if err != nil {
		return false, fmt.Errorf("mounting into %s: %w", to, err)
	}
	u := url.URL{Scheme: to.Scheme(), Host: to.RegistryStr(), Path: "/v2/" + to.RepositoryStr() + "/blobs/uploads/",
		RawQuery: url.Values{"mount": {blob.DigestStr()}, "from": {blob.Context().RepositoryStr()}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return false, err
	}
	client := &http.Client{Transport: rt}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("mounting %s into %s: %w", blob, to, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return false, fmt.Errorf("mounting %s into %s: %w", blob, to, transport.CheckError(resp, http.StatusCreated, http.StatusAccepted))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		// An upload session instead of a mount: cancel it.
		if loc, err := resp.Location(); err == nil {
			if del, err := http.NewRequestWithContext(ctx, http.MethodDelete, loc.String(), nil); err == nil {
				if r, err := client.Do(del); err == nil {
					r.Body.Close()
				}
			}
		}
	}
	return false, nil
}
