package registry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Timeouts and retries of every registry request wso2img makes itself (reading
// manifests, writing signatures, attestations, tags and mirror copies; BuildKit's own
// pushes are retried by re-running the solve). An unattended run must end: a registry
// that stops sending or reading for StallTimeout fails the request, and a transient
// failure is retried a bounded number of times.
const (
	// DefaultStallTimeout: no byte read or written on a connection for this long.
	DefaultStallTimeout = 60 * time.Second
	dialTimeout         = 30 * time.Second
	tlsTimeout          = 30 * time.Second
	// maxRetryAfter is the longest Retry-After (429, 503) that is waited for; a longer
	// one fails the request with the registry's answer.
	maxRetryAfter = 30 * time.Second
	// retryAfterTimes bounds how often one request waits for Retry-After.
	retryAfterTimes = 2
)

// RetryBackoff is the bounded backoff of transient failures (5xx, 429, 408, resets,
// unexpected EOFs): 4 tries, 0.5 s, 1 s, 2 s apart, a tenth of jitter. 401, 403 and
// other 4xx answers are never retried.
var RetryBackoff = remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 4}

var transports sync.Map // stall timeout -> http.RoundTripper

// transport is the shared transport for o's stall timeout: one connection pool per
// process, not one per request.
func (o Options) transport() http.RoundTripper {
	if o.Transport != nil {
		return o.Transport
	}
	stall := o.StallTimeout
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	if t, ok := transports.Load(stall); ok {
		return t.(http.RoundTripper)
	}
	t, _ := transports.LoadOrStore(stall, newTransport(stall))
	return t.(http.RoundTripper)
}

func newTransport(stall time.Duration) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &stallConn{Conn: c, stall: stall}, nil
	}
	t.TLSHandshakeTimeout = tlsTimeout
	t.ResponseHeaderTimeout = stall
	t.MaxIdleConnsPerHost = 8
	return retryAfter{rt: t, stall: stall}
}

// stallConn fails a read or write that makes no progress for stall: each one gets a
// fresh deadline, so a slow but moving transfer is never cut, and a stalled one ends.
type stallConn struct {
	net.Conn
	stall time.Duration
}

func (c *stallConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.stall)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	return n, stallError(err, "receiving", c.stall)
}

func (c *stallConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.stall)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	return n, stallError(err, "sending", c.stall)
}

// StallError is a connection on which nothing moved for the stall timeout. It does not
// unwrap to the deadline error beneath: that would read as the caller's own context
// running out, which go-containerregistry never retries.
type StallError struct {
	Doing string
	After time.Duration
	Err   error
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the registry connection stalled: nothing %s for %s", e.Doing, e.After)
}

// Timeout makes net/http treat it as the timeout it is; Temporary lets the bounded
// retry try once more, as for any transient failure.
func (e *StallError) Timeout() bool { return true }

// Temporary reports true: a stalled connection is retried (bounded, RetryBackoff).
func (e *StallError) Temporary() bool { return true }

func stallError(err error, doing string, d time.Duration) error {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return &StallError{Doing: doing, After: d, Err: err}
	}
	return err
}

// retryAfter waits as a registry asks (429 or 503 with Retry-After) before the same
// request is tried again, at most retryAfterTimes and maxRetryAfter each; what it does
// not retry, go-containerregistry's own retry (RetryBackoff) may.
type retryAfter struct {
	rt    http.RoundTripper
	stall time.Duration
}

func (r retryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	for i := 0; ; i++ {
		resp, err := r.rt.RoundTrip(req)
		if err != nil && strings.Contains(err.Error(), "timeout awaiting response headers") {
			// The registry took the request and sent nothing back.
			return nil, &StallError{Doing: "receiving", After: r.stall, Err: err}
		}
		if err != nil || i == retryAfterTimes || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
			return resp, err
		}
		wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok || wait > maxRetryAfter || (req.Body != nil && req.GetBody == nil) {
			return resp, nil
		}
		resp.Body.Close()
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
	}
}

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
