package netfault

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Entry is one request a Proxy received. It is logged when the request arrives (so a
// count right after a client call sees it) and completed when the proxy is done with
// it (Done); a client may see the end of an answer a moment before that.
type Entry struct {
	Time   time.Time
	Method string
	Path   string // URL path, e.g. "/v2/acme/wso2is/blobs/uploads/…"
	Query  string // raw query, without "?"
	// Rule is the name of the rule that fired on the request; empty when none did.
	Rule string
	// Action is what was done: "pass", "respond 503", "reset after body", ….
	Action string
	// Status is the status the client was sent; 0 when it got none (reset, stall, a
	// failed backend request whose client had already gone).
	Status int
	// BackendStatus is the status the backend answered; 0 when it was not asked.
	BackendStatus int
	// Location is the Location header the client was sent, after rewriting.
	Location string
	// BytesIn is the request body bytes read from the client; BytesOut the response body
	// bytes written to it.
	BytesIn, BytesOut int64
	// Err says what went wrong talking to the backend or the client, if anything.
	Err string
	// Duration is how long the proxy took, from arrival to Done.
	Duration time.Duration
	// Done is false while the proxy still handles the request.
	Done bool
}

// Requests returns a copy of the log, oldest first.
func (p *Proxy) Requests() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Entry, len(p.log))
	for i, e := range p.log {
		out[i] = *e
	}
	return out
}

// Count returns how many logged requests have the method (empty: any; case does not
// matter) and a path that path matches (nil: any).
func (p *Proxy) Count(method string, path *regexp.Regexp) int {
	n := 0
	for _, e := range p.Requests() {
		if (method == "" || strings.EqualFold(method, e.Method)) && (path == nil || path.MatchString(e.Path)) {
			n++
		}
	}
	return n
}

// Fired returns how many requests the rule named name fired on since the proxy started
// or ClearLog, counting rules of that name that were removed since.
func (p *Proxy) Fired(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fired[name]
}

// ClearLog empties the log and the Fired counters (not the rules' own Skip and Times
// counts), to start a new phase of a test.
func (p *Proxy) ClearLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = nil
	p.fired = map[string]int{}
}

// WaitIdle waits until no request is being handled, so that every Entry is Done. A
// stalled request keeps the proxy busy until it ends; ctx bounds the wait.
func (p *Proxy) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		busy := p.active
		p.mu.Unlock()
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d requests in flight to end: %w", busy, context.Cause(ctx))
		case <-t.C:
		}
	}
}
