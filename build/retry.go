package build

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pushAttempts bounds how often a push inside BuildKit's exporter is tried: a solve
// pushes by digest, so running it again is safe and pushes only what the registry
// still lacks.
const pushAttempts = 3

// pushBackoff is the wait before the second and third attempt.
var pushBackoff = []time.Duration{time.Second, 3 * time.Second}

// transientPushRE finds what BuildKit reports when a registry failed a push in a way
// that may pass on another try: a 5xx, 429 or 408 answer, or a connection that broke.
var transientPushRE = regexp.MustCompile(`(?i)\b(5\d\d|429|408) (Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout|Too Many Requests|Request Timeout|[A-Za-z ]{0,40})|connection reset by peer|broken pipe|unexpected EOF|: EOF\b|i/o timeout|server closed idle connection|use of closed network connection`)

// permanentPushRE finds answers that no retry changes: the registry refused the
// credentials, the repository, or the request.
var permanentPushRE = regexp.MustCompile(`\b(400|401|403|404|405|413) [A-Z]`)

// transientPush reports whether a failed solve was a registry's transient failure while
// BuildKit pushed. A daemon that went away is not one (a fleet moves the build to
// another daemon); a cancelled context is not either.
func transientPush(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.Unavailable {
		return false
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus().Code() == codes.Unavailable {
		return false
	}
	msg := err.Error()
	return transientPushRE.MatchString(msg) && !permanentPushRE.MatchString(msg)
}

// retryPush runs push up to pushAttempts times while it fails transiently, logging each
// new attempt.
func (d *Daemon) retryPush(ctx context.Context, plan *Plan, push func() (string, error)) (string, error) {
	for attempt := 1; ; attempt++ {
		digest, err := push()
		if err == nil || attempt == pushAttempts || !transientPush(err) || ctx.Err() != nil {
			return digest, err
		}
		wait := pushBackoff[attempt-1]
		if d.opts.Log != nil {
			fmt.Fprintf(d.opts.Log, "profile %q: the registry failed the push (%v); building and pushing again in %s (attempt %d of %d): the push is by digest, so only what is missing goes\n",
				plan.Profile.Name, err, wait, attempt+1, pushAttempts)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", err
		case <-t.C:
		}
	}
}
