package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Bounds on listing a repository's tags: a registry that answers with endless pages, a
// Link that points back to an earlier page, or an enormous page must not keep wso2img
// busy or fill its memory. WSO2's repositories hold a few hundred tags.
const (
	maxTagPages    = 1000
	maxTags        = 100_000
	maxTagPageSize = 8 << 20
)

// ListTags lists every tag of repo, following the registry's Link pagination; a
// repository that does not exist has none. It fails, saying why, when the registry's
// pages loop, exceed maxTagPages or maxTags, or a page exceeds maxTagPageSize.
func (o Options) ListTags(ctx context.Context, repo name.Repository) ([]string, error) {
	p, err := remote.NewPuller(append(o.Remote(ctx), remote.WithTransport(limitTagPages{o.transport()}))...)
	if err != nil {
		return nil, err
	}
	l, err := p.Lister(ctx, repo)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	var out []string
	seen := map[string]bool{}
	for pages := 0; l.HasNext(); pages++ {
		page, err := l.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the tags of %s (page %d): %w", repo, pages+1, err)
		}
		out = append(out, page.Tags...)
		switch {
		case len(out) > maxTags:
			return nil, fmt.Errorf("listing the tags of %s: more than %d tags; refusing to read on", repo, maxTags)
		case page.Next != "" && seen[page.Next]:
			return nil, fmt.Errorf("listing the tags of %s: the registry's next page %s was served before (a pagination loop)", repo, page.Next)
		case pages+1 >= maxTagPages && page.Next != "":
			return nil, fmt.Errorf("listing the tags of %s: more than %d pages; refusing to read on", repo, maxTagPages)
		}
		seen[page.Next] = true
	}
	return out, nil
}

// limitTagPages caps the body of a tags/list answer.
type limitTagPages struct{ rt http.RoundTripper }

func (l limitTagPages) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/tags/list") {
		return resp, err
	}
	if resp.ContentLength > maxTagPageSize {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: a tag list page of %d bytes (more than %d)", req.URL.Redacted(), resp.ContentLength, maxTagPageSize)
	}
	resp.Body = &capped{rc: resp.Body, left: maxTagPageSize, url: req.URL.Redacted()}
	return resp, nil
}

// capped fails a read past its limit rather than truncating silently.
type capped struct {
	rc   io.ReadCloser
	left int64
	url  string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Close now: go-containerregistry does not close a body it failed to decode.
		c.rc.Close()
		return 0, fmt.Errorf("%s: a tag list page of more than %d bytes", c.url, maxTagPageSize)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }
