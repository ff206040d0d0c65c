package inputs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// Timeouts for getting a response going. There is none on the body: a big download
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
}

// newHTTPClient trusts the system roots, SSL_CERT_FILE and caFile. SSL_CERT_FILE is
// read here rather than left to crypto/x509, which reads it once per process and
// only where it replaces the system roots.
func newHTTPClient(caFile, userAgent string) (*httpClient, error) {
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
	}
	return &httpClient{
		c:         &http.Client{Transport: tr, CheckRedirect: checkRedirect},
		userAgent: userAgent,
	}, nil
}

// redirectError is a redirect away from https, refused before it is followed.
type redirectError struct{ to string }

func (e *redirectError) Error() string { return "refused a redirect to " + e.to }

func checkRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return &redirectError{to: req.URL.Redacted()}
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
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

// get sends a GET for u and returns the response if it is 200 OK. Errors name s;
// an untrusted certificate or a redirect away from https is a *VerifyError.
func (c *httpClient) get(ctx context.Context, s Spec, u *url.URL) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: making the request: %w", where(s.Profile, s.Field, s.source()), err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.c.Do(req)
	if err != nil {
		return nil, requestError(s, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: fetching: HTTP %s", where(s.Profile, s.Field, s.source()), resp.Status)
	}
	// CheckRedirect already refused anything else; this keeps it true if that changes.
	if resp.Request.URL.Scheme != "https" {
		resp.Body.Close()
		return nil, verifyErr(s, whatHTTPS, "https all the way", "a response from "+resp.Request.URL.Redacted())
	}
	return resp, nil
}

func requestError(s Spec, err error) error {
	var re *redirectError
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
