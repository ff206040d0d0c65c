package build

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestTransientPush: which failed pushes are tried again. The messages are BuildKit's,
// as a solve returns them.
func TestTransientPush(t *testing.T) {
	for msg, want := range map[string]bool{
		`failed to push 127.0.0.1:5000/a/wso2is: unexpected status from PUT request to http://127.0.0.1:5000/v2/a/wso2is/manifests/sha256:ab: 503 Service Unavailable`:   true,
		`failed to push 127.0.0.1:5000/a/wso2is: unexpected status from PUT request to http://127.0.0.1:5000/v2/a/wso2is/blobs/uploads/x: 500 Internal Server Error`:     true,
		`failed to push x: failed to do request: Put "http://127.0.0.1:5000/v2/a/blobs/uploads/1": read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer`: true,
		`failed to push x: unexpected status from POST request to http://h/v2/a/blobs/uploads/: 429 Too Many Requests`:                                                   true,
		`failed to push x: failed commit on ref "layer-sha256:ab": unexpected EOF`:                                                                                       true,
		`failed to push x: unexpected status from PUT request to http://h/v2/a/manifests/sha256:ab: 401 Unauthorized`:                                                    false,
		`failed to push x: unexpected status from PUT request to http://h/v2/a/manifests/sha256:ab: 403 Forbidden`:                                                       false,
		`failed to solve: process "/bin/sh" did not complete successfully: exit code: 1`:                                                                                 false,
	} {
		err := fmt.Errorf("profile %q: building on BuildKit: %w", "p", status.Error(codes.Unknown, msg))
		if got := transientPush(err); got != want {
			t.Errorf("transientPush(%q) = %v, want %v", msg, got, want)
		}
	}
	for _, err := range []error{
		context.Canceled,
		fmt.Errorf("building: %w", status.Error(codes.Unavailable, "error reading from server: EOF")),
		nil,
		errors.New("no such file"),
	} {
		if transientPush(err) {
			t.Errorf("transientPush(%v) = true", err)
		}
	}
}
