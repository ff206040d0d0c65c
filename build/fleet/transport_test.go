package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wso2img/wso2img/build/fleet"
)

// realDialError is what dialling a socket nobody listens on gives.
func realDialError(t *testing.T) error {
	t.Helper()
	_, err := net.Dial("unix", filepath.Join(t.TempDir(), "gone.sock"))
	if err == nil {
		t.Fatal("dialled a missing socket")
	}
	return err
}

// realRefused is what dialling a closed loopback port gives.
func realRefused(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		t.Skip("the closed port was taken again")
	}
	return err
}

// realReset is a read on a connection the peer reset (SO_LINGER 0 then close).
func realReset(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err // the reset came before the dial returned: the same error, sooner
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

// fromDaemon is an error as BuildKit's client returns it: the status decoded from the
// wire (grpcerrors.FromGRPC), wrapped by the build.
func fromDaemon(code codes.Code, msg string) error {
	return fmt.Errorf("profile %q: building on BuildKit at unix:///x: %w", "p", grpcerrors.FromGRPC(status.Error(code, msg)))
}

func TestFleetIsTransport(t *testing.T) {
	closedRead := func() error {
		a, b := net.Pipe()
		b.Close()
		_, err := a.Read(make([]byte, 1))
		return err
	}()
	closedUse := func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		_, err = l.Accept()
		return err
	}()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		// The daemon could not be reached, or the connection was lost: gRPC's words for it.
		{"killed mid-solve", fromDaemon(codes.Unavailable, "error reading from server: EOF"), true},
		{"transport closing", fromDaemon(codes.Unavailable, "transport is closing"), true},
		{"transport closing (old gRPC)", fromDaemon(codes.Canceled, "transport is closing"), true},
		{"socket gone", fromDaemon(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory"`), true},
		{"refused", status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1234: connect: connection refused"`), true},
		{"tls handshake", status.Error(codes.Unavailable, `connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`), true},
		// Errors of the network and io packages, as a session or dialer returns them.
		{"io.EOF", fmt.Errorf("receiving: %w", io.EOF), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"dial missing socket", realDialError(t), true},
		{"dial refused", realRefused(t), true},
		{"reset by peer", realReset(t), true},
		{"closed pipe", closedRead, true},
		{"use of closed connection", closedUse, true},
		{"ECONNRESET", &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}, true},
		{"EPIPE", &os.SyscallError{Syscall: "write", Err: syscall.EPIPE}, true},
		{"joined", errors.Join(errors.New("solve"), fromDaemon(codes.Unavailable, "error reading from server: EOF")), true},

		// The build's own errors: another daemon would only repeat them.
		{"nil", nil, false},
		{"registry 401", fromDaemon(codes.Unknown, "failed to push 127.0.0.1:5000/acme/wso2is: unexpected status from PUT request to http://127.0.0.1:5000/v2/acme/wso2is/blobs/uploads/: 401 Unauthorized"), false},
		{"registry unreachable from the daemon", fromDaemon(codes.Unknown, "failed to do request: Head \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"), false},
		{"bad LLB", fromDaemon(codes.InvalidArgument, "failed to load LLB: invalid op"), false},
		{"not found", fromDaemon(codes.NotFound, "docker.wso2.com/wso2is:5.8.0: not found"), false},
		{"internal", fromDaemon(codes.Internal, "failed to solve: mount callback failed"), false},
		{"caller cancelled", fmt.Errorf("building: %w", context.Canceled), false},
		{"caller cancelled (status)", fromDaemon(codes.Canceled, "context canceled"), false},
		{"deadline", fmt.Errorf("building: %w", context.DeadlineExceeded), false},
		{"deadline (status)", fromDaemon(codes.DeadlineExceeded, "context deadline exceeded"), false},
		{"plain", errors.New("profile \"p\": BuildKit returned no image digest"), false},
		{"local file", &os.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fleet.IsTransport(tc.err); got != tc.want {
				t.Errorf("IsTransport(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
