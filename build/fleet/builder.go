package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/moby/buildkit/client"
)

// DefaultParallel is how many builds a builder of a fleet of several runs at once when
// its Parallel is 0; one more spills to the next-ranked builder. A fleet of one builder
// has nothing to spill to, and runs as many as it is given.
const DefaultParallel = 2

// Builder is one BuildKit daemon of the fleet, as the user names it.
type Builder struct {
	// Addr is the daemon's address: unix:///run/buildkit/buildkitd.sock,
	// tcp://buildkitd-0.buildkitd:1234, kube-pod://POD?namespace=NS (through kubectl
	// exec), docker-container://NAME (through docker exec). It names the builder in
	// messages and results.
	Addr string `json:"host" yaml:"host"`
	// CA, Cert and Key are PEM files for mutual TLS to a tcp:// daemon: the CA that
	// signed the daemon's certificate, and the client's certificate and key.
	CA   string `json:"ca,omitempty" yaml:"ca,omitempty"`
	Cert string `json:"cert,omitempty" yaml:"cert,omitempty"`
	Key  string `json:"key,omitempty" yaml:"key,omitempty"`
	// Parallel bounds the builds it runs at once; 0 is DefaultParallel.
	Parallel int `json:"parallel,omitempty" yaml:"parallel,omitempty"`
}

// schemes are the addresses a builder may have: BuildKit's own, and the connection
// helpers the binary compiles in (see cmd/wso2img/builders.go).
var schemes = map[string]bool{"unix": true, "tcp": true, "kube-pod": true, "docker-container": true}

// Validate checks the builder's address and TLS settings without connecting.
func (b Builder) Validate() error {
	u, err := url.Parse(b.Addr)
	if err != nil || !schemes[u.Scheme] {
		return fmt.Errorf("builder %q: expected an address unix:///PATH, tcp://HOST:PORT, kube-pod://POD or docker-container://NAME", b.Addr)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return fmt.Errorf("builder %q: no socket path: expected unix:///PATH", b.Addr)
		}
	case "tcp":
		if u.Hostname() == "" || u.Port() == "" {
			return fmt.Errorf("builder %q: expected tcp://HOST:PORT", b.Addr)
		}
	default:
		if u.Host == "" {
			return fmt.Errorf("builder %q: no %s name: expected %s://NAME", b.Addr, u.Scheme, u.Scheme)
		}
	}
	if (b.CA != "" || b.Cert != "" || b.Key != "") && u.Scheme != "tcp" {
		return fmt.Errorf("builder %q: TLS files (ca, cert, key) apply to tcp:// builders only", b.Addr)
	}
	if (b.Cert == "") != (b.Key == "") {
		return fmt.Errorf("builder %q: a client certificate needs its key, and a key its certificate (cert and key go together)", b.Addr)
	}
	if b.Parallel < 0 {
		return fmt.Errorf("builder %q: parallel %d: expected 0 (the default, %d) or more", b.Addr, b.Parallel, DefaultParallel)
	}
	return nil
}

// dial makes the daemon's client. It does not connect: BuildKit's client connects on
// first use, which the health check is. TLS files are read now, so a missing one is an
// error before anything is built.
func dial(ctx context.Context, b Builder) (*client.Client, error) {
	var opts []client.ClientOpt
	if b.CA != "" || b.Cert != "" {
		u, _ := url.Parse(b.Addr)
		if b.CA != "" {
			opts = append(opts, client.WithServerConfig(u.Hostname(), b.CA))
		} else {
			opts = append(opts, client.WithServerConfigSystem(u.Hostname()))
		}
		if b.Cert != "" {
			opts = append(opts, client.WithCredentials(b.Cert, b.Key))
		}
	}
	c, err := client.New(ctx, b.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("builder %s: %w", b.Addr, err)
	}
	return c, nil
}

// healthCheck asks the daemon for its workers: it answers, and can build. When a TLS
// builder does not answer, a handshake of its own says whether TLS is why: gRPC often
// reports only the broken pipe that follows a refused client certificate.
func healthCheck(c *client.Client, b Builder, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		ws, err := c.ListWorkers(ctx)
		if err != nil {
			if b.CA != "" || b.Cert != "" {
				if herr := handshake(ctx, b); herr != nil {
					return &TLSError{Err: herr, Check: err}
				}
			}
			return err
		}
		if len(ws) == 0 {
			return errors.New("the daemon has no workers")
		}
		return nil
	}
}

// TLSError is a builder whose TLS handshake failed: it refused the client certificate,
// or its own certificate is not trusted, or it does not speak TLS.
type TLSError struct {
	// Err is what the handshake said.
	Err error
	// Check is what the health check said.
	Check error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS handshake failed (check the CA, client certificate and key given for this builder): %v (health check: %v)", e.Err, e.Check)
}

func (e *TLSError) Unwrap() []error { return []error{e.Err, e.Check} }

// handshake makes one TLS connection to a tcp:// builder as its client would, and waits
// briefly for the daemon's verdict on the client certificate: with TLS 1.3 the client's
// handshake completes before the server has checked it, and a refusal arrives as an
// alert on the first read. A daemon that accepts waits for the client to speak first,
// so the read times out and the handshake is good.
func handshake(ctx context.Context, b Builder) error {
	u, _ := url.Parse(b.Addr)
	cfg := &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}
	if b.CA != "" {
		pem, err := os.ReadFile(b.CA)
		if err != nil {
			return err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no PEM certificate", b.CA)
		}
	}
	if b.Cert != "" {
		cert, err := tls.LoadX509KeyPair(b.Cert, b.Key)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		var rec tls.RecordHeaderError
		var cv *tls.CertificateVerificationError
		var alert tls.AlertError
		if errors.As(err, &rec) || errors.As(err, &cv) || errors.As(err, &alert) || isTLS(err) {
			return err
		}
		return nil // not a TLS failure: the health check's error says it
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	var alert tls.AlertError
	if errors.As(err, &alert) || isTLS(err) {
		return err
	}
	return nil
}
