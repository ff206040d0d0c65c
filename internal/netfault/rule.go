package netfault

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Rule says which requests a Proxy mistreats, and how.
//
// A request matches when its method, path and predicate all match. Rules are tried in
// the order they were added; the first matching rule that still has a turn fires, and
// a request that no rule fires on is passed through to the backend.
type Rule struct {
	// Name identifies the rule in the log and in Fired; unique among the rules in place.
	// Empty means "rule-N" (N counts the rules added).
	Name string
	// Method is the HTTP method to match ("PUT"); empty matches any.
	Method string
	// Path is matched against the request's URL path (no query), e.g.
	// `^/v2/.+/blobs/uploads/`; nil matches any.
	Path *regexp.Regexp
	// When, if set, must also return true. It must not read the body, must be quick, and
	// must not call the Proxy (it runs while the proxy routes the request).
	When func(*http.Request) bool
	// Skip lets the first Skip matching requests through (to later rules, then the
	// backend) before the rule starts firing: "fail the third PUT" is Skip 2, Times 1.
	Skip int
	// Times is how many matching requests the rule fires on; after that it lets them
	// through. 0 means every one.
	Times int
	// Action is what happens to a request the rule fires on; the zero Action passes it
	// through (useful to count requests or to shadow later rules).
	Action Action
}

// Action is what a Proxy does with a request a rule fires on. Make one with Respond,
// Reset, Stall, StallBody or Delay; the zero Action passes the request through.
type Action struct {
	kind   actionKind
	status int
	header http.Header
	phase  Phase
	d      time.Duration
	n      int64
}

type actionKind int

const (
	actPass actionKind = iota
	actRespond
	actReset
	actStall
	actStallBody
	actDelay
)

// Phase is when a Reset action resets the client's connection.
type Phase int

const (
	// BeforeBody resets once the request's headers are read, before its body is: the
	// backend never sees the request.
	BeforeBody Phase = iota
	// AfterBody reads the whole request body, then resets: the backend never sees the
	// request, but the client has sent all of it.
	AfterBody
	// AfterBackend forwards the request, reads the backend's whole response, then resets
	// instead of answering: the backend did the work, the client never learns it.
	AfterBackend
)

func (p Phase) String() string {
	switch p {
	case BeforeBody:
		return "before body"
	case AfterBody:
		return "after body"
	case AfterBackend:
		return "after backend"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Respond answers with status and a registry-style JSON error body
// ({"errors":[{"code":…,"message":…}]}, code chosen from the status and the path: 503 is
// UNAVAILABLE, 429 TOOMANYREQUESTS, 404 on a manifest MANIFEST_UNKNOWN, …), without
// contacting the backend. The request body is read first, so that the client sees the
// answer rather than a failed write. Add headers with WithHeader.
func Respond(status int) Action { return Action{kind: actRespond, status: status} }

// WithHeader returns a copy of a Respond action that also sends the header key: value,
// e.g. Respond(429).WithHeader("Retry-After", "2") or
// Respond(401).WithHeader("WWW-Authenticate", `Basic realm="netfault"`).
func (a Action) WithHeader(key, value string) Action {
	h := a.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Add(key, value)
	a.header = h
	return a
}

// Reset resets the client's TCP connection (RST: SO_LINGER 0, then close) at phase p;
// the client sees "connection reset by peer".
func Reset(p Phase) Action { return Action{kind: actReset, phase: p} }

// Stall reads the request and then sends nothing until the client gives up, d passes,
// or the proxy closes; then it closes the connection without an answer (the client
// sees EOF). d of 0 means no time limit.
func Stall(d time.Duration) Action { return Action{kind: actStall, d: d} }

// StallBody forwards the request and answers with the backend's status, headers and the
// first n bytes of its body, then stalls like Stall(d) and closes the connection: the
// client sees a truncated body. A body of n bytes or fewer is passed whole.
func StallBody(n int64, d time.Duration) Action { return Action{kind: actStallBody, n: n, d: d} }

// Delay waits d (or until the client gives up), then passes the request through.
func Delay(d time.Duration) Action { return Action{kind: actDelay, d: d} }

// String describes the action for the log: "respond 503", "reset after body", ….
func (a Action) String() string {
	switch a.kind {
	case actPass:
		return "pass"
	case actRespond:
		return fmt.Sprintf("respond %d", a.status)
	case actReset:
		return "reset " + a.phase.String()
	case actStall:
		return "stall " + forever(a.d)
	case actStallBody:
		return fmt.Sprintf("stall body after %d bytes %s", a.n, forever(a.d))
	case actDelay:
		return "delay " + a.d.String()
	}
	return fmt.Sprintf("action(%d)", int(a.kind))
}

func forever(d time.Duration) string {
	if d == 0 {
		return "until the client gives up"
	}
	return "for " + d.String()
}

// validate rejects actions no constructor makes (a status outside 100..599, a negative
// duration or count, a phase that does not exist).
func (a Action) validate() error {
	switch {
	case a.kind == actRespond && (a.status < 100 || a.status > 599):
		return fmt.Errorf("status %d is not an HTTP status (100..599)", a.status)
	case a.d < 0:
		return fmt.Errorf("duration %s is negative", a.d)
	case a.n < 0:
		return fmt.Errorf("byte count %d is negative", a.n)
	case a.kind == actReset && (a.phase < BeforeBody || a.phase > AfterBackend):
		return fmt.Errorf("reset phase %d does not exist", int(a.phase))
	case len(a.header) > 0 && a.kind != actRespond:
		return fmt.Errorf("headers are only sent by Respond, not by %s", a)
	}
	return nil
}

// ruleState is a rule in place with its counters; counters are guarded by Proxy.mu.
type ruleState struct {
	Rule
	seen  int // matching requests so far
	fired int // requests it fired on
}

// matches reports whether r matches the rule's method, path and predicate.
func (rs *ruleState) matches(r *http.Request) bool {
	if rs.Method != "" && !strings.EqualFold(rs.Method, r.Method) {
		return false
	}
	if rs.Path != nil && !rs.Path.MatchString(r.URL.Path) {
		return false
	}
	return rs.When == nil || rs.When(r)
}

// errorCode is the distribution-spec error code a registry would send with status for
// a request to path.
func errorCode(status int, path string) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusNotFound:
		switch {
		case strings.Contains(path, "/manifests/"):
			return "MANIFEST_UNKNOWN"
		case strings.Contains(path, "/blobs/uploads/"):
			return "BLOB_UPLOAD_UNKNOWN"
		case strings.Contains(path, "/blobs/"):
			return "BLOB_UNKNOWN"
		}
		return "NAME_UNKNOWN"
	case http.StatusMethodNotAllowed:
		return "UNSUPPORTED"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}
