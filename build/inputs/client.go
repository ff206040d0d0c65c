package inputs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/wso2img/wso2img/internal/units"
)

// Timeouts for getting a response going. The body is bounded by the stall timeout (no
// byte for that long fails it) and the size cap, not by a total time: a big download
// may take long, and the caller's context is what stops it.
const (
	dialTimeout           = 30 * time.Second
	tlsHandshakeTimeout   = 30 * time.Second
	responseHeaderTimeout = 60 * time.Second
	maxRedirects          = 10
)

// httpClient is the one HTTPS client of a Fetcher.
type httpClient struct {
	c         *http.Client
	userAgent string
	stall     time.Duration
	netrc     netrc
}

// newHTTPClient trusts the system roots, SSL_CERT_FILE and caFile. SSL_CERT_FILE is
// read here rather than left to crypto/x509, which reads it once per process and
// only where it replaces the system roots.
func newHTTPClient(caFile, userAgent string, stall time.Duration, nrc netrc) (*httpClient, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, b := range []struct{ what, path string }{
		{"SSL_CERT_FILE", os.Getenv("SSL_CERT_FILE")},
		{"CA file", caFile},
	} {
		if b.path == "" {
			continue
		}
		pem, err := os.ReadFile(b.path)
		if err != nil {
			return nil, fmt.Errorf("reading the %s: %w", b.what, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading the %s %s: no PEM certificate in it", b.what, b.path)
		}
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		// The checksums a vendor publishes are of the file as served: never ask for a
		// compressed transfer that Go would decode behind our back.
		DisableCompression: true,
	}
	return &httpClient{
		c:         &http.Client{Transport: tr, CheckRedirect: checkRedirect},
		userAgent: userAgent,
		stall:     stall,
		netrc:     nrc,
	}, nil
}

// redirectError is a redirect away from https, refused before it is followed.
type redirectError struct{ to string }

func (e *redirectError) Error() string { return "refused a redirect to " + e.to }

// checkRedirect refuses a redirect away from https, and drops the credentials of a
// redirect to another host (or port): Go's client keeps them for a subdomain.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return &redirectError{to: redact(req.URL.String())}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if !sameHost(via[0].URL, req.URL) {
		req.Header.Del("Authorization")
	}
	return nil
}

// parseHTTPS parses raw and refuses anything but an https URL with a host, before any
// connection is made. s names the input in the error (its source is raw).
func parseHTTPS(s Spec, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: parsing the URL: %w", where(s.Profile, s.Field, raw), err)
	}
	if u.Scheme != "https" {
		found := fmt.Sprintf("scheme %q", u.Scheme)
		if u.Scheme == "" {
			found = "no scheme"
		}
		return nil, verifyErr(s, whatHTTPS, "an https:// URL (nothing else is fetched)", found)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: the URL has no host", where(s.Profile, s.Field, raw))
	}
	return u, nil
}

// errStalled is the cause of a request cancelled by the stall timer.
var errStalled = errors.New("stalled")

// get sends a GET for u and returns the response if it is 200 OK. Errors name s;
// an untrusted certificate or a redirect away from https is a *VerifyError. The
// response's body fails with a *stallError when no byte arrives for the stall timeout;
// closing it ends the request.
func (c *httpClient) get(ctx context.Context, s Spec, u *url.URL) (*http.Response, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.stall, func() { cancel(errStalled) })
	fail := func(err error) (*http.Response, error) {
		timer.Stop()
		cancel(nil)
		return nil, err
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fail(fmt.Errorf("%s: making the request: %w", where(s.Profile, s.Field, s.source()), err))
	}
	req.Header.Set("User-Agent", c.userAgent)
	auth, from, err := c.credential(s, u)
	if err != nil {
		return fail(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.c.Do(req)
	if err == nil && errors.Is(context.Cause(rctx), errStalled) {
		// A response that raced with the cancellation is not trusted either.
		resp.Body.Close()
		err = errStalled
	}
	if err != nil {
		if errors.Is(context.Cause(rctx), errStalled) {
			return fail(fmt.Errorf("%s: fetching: %w", where(s.Profile, s.Field, s.source()), &stallError{idle: c.stall, total: -1, before: true}))
		}
		return fail(requestError(s, err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		hint := ""
		switch {
		case (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) && from != "":
			hint = " (the credentials from " + from + " were refused)"
		case resp.StatusCode == http.StatusUnauthorized:
			hint = " (the server wants credentials: give the input auth: {env: VARIABLE}, or add the host to your netrc file)"
		}
		return fail(fmt.Errorf("%s: fetching: HTTP %s%s", where(s.Profile, s.Field, s.source()), resp.Status, hint))
	}
	// CheckRedirect already refused anything else; this keeps it true if that changes.
	if resp.Request.URL.Scheme != "https" {
		resp.Body.Close()
		return fail(verifyErr(s, whatHTTPS, "https all the way", "a response from "+redact(resp.Request.URL.String())))
	}
	timer.Reset(c.stall)
	resp.Body = &watchedBody{rc: resp.Body, ctx: rctx, cancel: cancel, timer: timer, stall: c.stall, total: resp.ContentLength}
	return resp, nil
}

// watchedBody is a response body under the stall timer: every byte that arrives
// restarts it; when it fires, the request is cancelled and Read says how far it got.
type watchedBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	stall  time.Duration
	total  int64
	seen   int64
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.seen += int64(n)
		b.timer.Reset(b.stall)
	}
	// Once the timer has fired, even an end of the body is not trusted: the request
	// was being cancelled, and a server may end a response it could not finish.
	if err != nil && errors.Is(context.Cause(b.ctx), errStalled) {
		err = &stallError{idle: b.stall, seen: b.seen, total: b.total}
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// stallError is a download that received nothing for the stall timeout.
type stallError struct {
	idle        time.Duration
	seen, total int64 // total is -1 when the server declared no length
	before      bool  // no response at all
}

func (e *stallError) Error() string {
	if e.before {
		return fmt.Sprintf("stalled before the response: no data for %s (connecting, TLS handshake or waiting for the headers)", e.idle)
	}
	of := ""
	if e.total >= 0 {
		of = " of " + units.Bytes(e.total)
	}
	return fmt.Sprintf("stalled after %s%s: no data for %s", units.Bytes(e.seen), of, e.idle)
}

func requestError(s Spec, err error) error {
	var re *redirectError
	var se *stallError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: fetching: %w", where(s.Profile, s.Field, s.source()), se)
	}
	if errors.As(err, &re) {
		return verifyErr(s, whatHTTPS, "redirects to https:// URLs only", "a redirect to "+re.to)
	}
	var unknownCA x509.UnknownAuthorityError
	if errors.As(err, &unknownCA) {
		e := verifyErr(s, whatTLS, "a certificate from a trusted CA",
			"a certificate signed by an unknown authority (the CA is not trusted; if it is yours, pass its PEM bundle with --ca-file or SSL_CERT_FILE)")
		e.Err = err
		return e
	}
	var badCert *tls.CertificateVerificationError
	if errors.As(err, &badCert) {
		e := verifyErr(s, whatTLS, "a valid certificate for "+hostOf(s.source()), badCert.Err.Error())
		e.Err = err
		return e
	}
	// url.Error repeats the URL that the prefix already names.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: fetching: %w", where(s.Profile, s.Field, s.source()), err)
}

func hostOf(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return raw
}
