package fleet

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IsTransport reports whether err says that the daemon could not be reached or the
// connection to it was lost (gRPC Unavailable; EOF, a refused, reset or closed
// connection), as opposed to an error of the build itself (a bad LLB, a registry that
// refused the push, a cancelled context), which another daemon would only repeat.
//
// An error the daemon sent back is judged by its gRPC code alone, never by its text: a
// daemon that reports "connection refused" from the registry it pushes to is answering,
// and a push that fails there fails on every daemon.
func IsTransport(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		st := se.GRPCStatus()
		switch st.Code() {
		case codes.Unavailable:
			return true
		case codes.Canceled:
			// Older gRPC clients report a connection torn down under a stream this way;
			// a context the caller cancelled is caught above.
			return strings.Contains(st.Message(), "transport is closing")
		}
		return false
	}
	for _, target := range []error{io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE} {
		if errors.Is(err, target) {
			return true
		}
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// isTLS reports whether a transport error is a failed TLS handshake: a certificate the
// daemon or the client refused, or a daemon that does not speak TLS at all.
func isTLS(err error) bool {
	msg := err.Error()
	for _, s := range []string{"authentication handshake failed", "tls: ", "x509: ", "first record does not look like a TLS handshake"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
