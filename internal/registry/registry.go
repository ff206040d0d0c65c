// Package registry is the one place wso2img sets up go-containerregistry: reference
// parsing (with the hosts spoken to over plain HTTP), base-image mirrors, and remote
// options (auth from the docker config and its credential helpers, user agent, context).
// Every package that talks to a registry gets its options from here.
package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options say how to reach registries.
type Options struct {
	// Insecure lists registry hosts ("127.0.0.1:5000") spoken to over plain HTTP. Meant
	// for loopback registries in tests and the demo.
	Insecure []string
	// Mirrors rewrite base-image references: the first whose From prefixes a reference
	// replaces that prefix with To.
	Mirrors []Mirror
	// Keychain finds credentials; nil means the docker config (~/.docker/config.json,
	// $DOCKER_CONFIG) with its credential helpers.
	Keychain authn.Keychain
	// UserAgent is sent with every request.
	UserAgent string
	// StallTimeout fails a request on which nothing moves for this long; default
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// Transport replaces the shared transport (tests that trust a proxy's CA); it
	// still gets go-containerregistry's bounded retries.
	Transport http.RoundTripper
}

// Mirror maps a registry (or repository prefix) to where its images are mirrored.
type Mirror struct {
	From, To string
}

// ParseMirror reads "FROM=TO", e.g. "docker.wso2.com=registry.acme.com/mirror/wso2".
func ParseMirror(s string) (Mirror, error) {
	from, to, ok := strings.Cut(s, "=")
	from, to = strings.TrimSuffix(from, "/"), strings.TrimSuffix(to, "/")
	if !ok || from == "" || to == "" {
		return Mirror{}, fmt.Errorf("mirror %q: expected FROM=TO, e.g. docker.wso2.com=registry.acme.com/mirror", s)
	}
	return Mirror{From: from, To: to}, nil
}

// Mirrored returns where ref is pulled from: ref itself, or its mirror. It reports
// whether a mirror applied.
func (o Options) Mirrored(ref string) (string, bool) {
	for _, m := range o.Mirrors {
		if rest, ok := strings.CutPrefix(ref, m.From); ok && (rest == "" || strings.ContainsAny(rest[:1], "/:@")) {
			return m.To + rest, true
		}
	}
	return ref, false
}

// IsInsecure reports whether host is spoken to over plain HTTP.
func (o Options) IsInsecure(host string) bool {
	for _, h := range o.Insecure {
		if h == host {
			return true
		}
	}
	return false
}

func (o Options) nameOptions(s string) []name.Option {
	host := s
	if i := strings.IndexByte(s, '/'); i >= 0 {
		host = s[:i]
	}
	if o.IsInsecure(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

// ParseReference parses an image reference, marking insecure hosts as such.
func (o Options) ParseReference(s string) (name.Reference, error) {
	return name.ParseReference(s, o.nameOptions(s)...)
}

// NewRepository parses a repository name, marking insecure hosts as such.
func (o Options) NewRepository(s string) (name.Repository, error) {
	return name.NewRepository(s, o.nameOptions(s)...)
}

// NewDigest parses "repo@sha256:…", marking insecure hosts as such.
func (o Options) NewDigest(s string) (name.Digest, error) {
	return name.NewDigest(s, o.nameOptions(s)...)
}

// Remote returns the go-containerregistry options for requests made under ctx.
func (o Options) Remote(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc),
		remote.WithTransport(o.transport()), remote.WithRetryBackoff(RetryBackoff)}
	if o.UserAgent != "" {
		opts = append(opts, remote.WithUserAgent(o.UserAgent))
	}
	return opts
}
