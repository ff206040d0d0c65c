package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client"

	"github.com/wso2img/wso2img/build/buildkitd"
)

// Buildkitd is a private buildkitd (bin/buildkitd) with the OCI worker (runc) and the
// overlayfs snapshotter, its state, config and log under Dir.
type Buildkitd struct {
	// Addr is the daemon's address, "unix:///…/buildkitd.sock", for BUILDKIT_HOST.
	Addr string
	// Dir holds root/ (the daemon's state), buildkitd.toml and the log.
	Dir string
	// ConfigFile is the daemon's buildkitd.toml.
	ConfigFile string
	// LogFile is the daemon's log.
	LogFile string
	// TCPAddr is "tcp://127.0.0.1:PORT" when the daemon also listens on TCP with mutual
	// TLS (WithTLS), else "".
	TCPAddr string

	tls *TLSFiles

	sockDir   string // a short directory under /tmp for the socket, removed by Close; "" when the socket is in Dir
	proc      *process
	closeOnce sync.Once
	closeErr  error
}

// buildkitdStartTimeout bounds StartBuildkitd when ctx has no deadline.
const buildkitdStartTimeout = 60 * time.Second

// maxSocketPath is the longest unix socket path that fits sun_path (108 bytes with the
// terminating NUL), less a margin.
const maxSocketPath = 100

// BuildkitdOption changes how StartBuildkitd starts the daemon.
type BuildkitdOption func(*Buildkitd)

// TLSFiles are PEM files for a daemon's TLS listener.
type TLSFiles struct {
	// Cert and Key are the daemon's certificate (valid for 127.0.0.1) and key.
	Cert, Key string
	// ClientCA is the CA that must have signed a client's certificate.
	ClientCA string
}

// WithTLS makes the daemon also listen on tcp://127.0.0.1:PORT (Buildkitd.TCPAddr) with
// mutual TLS: its certificate and key, and the CA its clients' certificates must chain
// to (see NewCA). Its unix socket stays, without TLS, for the test's own use.
func WithTLS(files TLSFiles) BuildkitdOption {
	return func(b *Buildkitd) { b.tls = &files }
}

// StartBuildkitd starts buildkitd with its state, config and log under dir (created if
// missing) and returns once it lists a worker. Each of insecureRegistries ("HOST:PORT") is
// configured as a plain-HTTP, insecure registry. The socket is dir/buildkitd.sock when
// that path fits a unix socket, else in a short directory under /tmp. ctx bounds the
// start only; the daemon runs until Close. It needs root and runc (see Need).
func StartBuildkitd(ctx context.Context, dir string, insecureRegistries []string, opts ...BuildkitdOption) (*Buildkitd, error) {
	bin, err := Bin("buildkitd")
	if err != nil {
		return nil, err
	}
	runc, err := Bin("runc")
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("creating the buildkitd directory: %w", err)
	}
	b := &Buildkitd{
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "buildkitd.toml"),
		LogFile:    filepath.Join(dir, "buildkitd.log"),
	}
	for _, o := range opts {
		o(b)
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	if len(sock) > maxSocketPath {
		if b.sockDir, err = os.MkdirTemp("/tmp", "wso2img-bk-"); err != nil {
			return nil, fmt.Errorf("creating a socket directory: %w", err)
		}
		sock = filepath.Join(b.sockDir, "buildkitd.sock")
	} else if err := buildkitd.RemoveStaleSocket(sock); err != nil {
		return nil, err
	}
	b.Addr = "unix://" + sock

	if err := os.WriteFile(b.ConfigFile, []byte(buildkitd.Config(root, runc, filepath.Join(filepath.Dir(sock), "otel.sock"), insecureRegistries)), 0o644); err != nil {
		b.Close()
		return nil, fmt.Errorf("writing buildkitd.toml: %w", err)
	}
	// The config names runc; $PATH gets its directory too, for helpers found beside it.
	env := childEnv("PATH=" + filepath.Dir(runc) + string(os.PathListSeparator) + os.Getenv("PATH"))
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, buildkitdStartTimeout)
		defer cancel()
	}
	// A free TCP port may be taken before the daemon binds it: start again on another.
	for attempt := 1; ; attempt++ {
		args := buildkitd.Args(b.ConfigFile, root, b.Addr)
		if b.tls != nil {
			port, err := freePort()
			if err != nil {
				b.Close()
				return nil, err
			}
			b.TCPAddr = fmt.Sprintf("tcp://127.0.0.1:%d", port)
			args = append(args, "--addr", b.TCPAddr, "--tlscert", b.tls.Cert, "--tlskey", b.tls.Key, "--tlscacert", b.tls.ClientCA)
		}
		b.proc, err = startProcess("buildkitd", b.LogFile, env, bin, args...)
		if err != nil {
			b.Close()
			return nil, err
		}
		err = b.waitReady(ctx)
		if err == nil {
			break
		}
		b.proc.stop(20 * time.Second)
		if b.tls == nil || attempt == 5 || !strings.Contains(Tail(b.LogFile, 30), "address already in use") {
			b.Close()
			return nil, err
		}
		_ = unmountUnder(b.Dir)
	}
	return b, nil
}

// waitReady waits until the daemon lists a worker, and its TCP listener (when it has
// one) accepts connections.
func (b *Buildkitd) waitReady(ctx context.Context) error {
	if err := buildkitd.WaitReady(ctx, b.Addr, b.proc.exitError); err != nil {
		return fmt.Errorf("%w; last lines of %s:\n%s", err, b.LogFile, Tail(b.LogFile, 30))
	}
	if b.TCPAddr == "" {
		return nil
	}
	hostPort := strings.TrimPrefix(b.TCPAddr, "tcp://")
	for {
		if err := b.proc.exitError(); err != nil {
			return err
		}
		if c, err := net.DialTimeout("tcp", hostPort, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for buildkitd on %s: %w; last lines of %s:\n%s", b.TCPAddr, ctx.Err(), b.LogFile, Tail(b.LogFile, 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Kill ends the daemon with SIGKILL, as a crashed node or an evicted pod ends: builds
// running on it lose their connection mid-solve. It returns once the process is gone;
// Close still unmounts what it left.
func (b *Buildkitd) Kill() {
	if b.proc != nil {
		b.proc.kill()
	}
}

// Client connects to the daemon; the caller closes the client.
func (b *Buildkitd) Client(ctx context.Context) (*client.Client, error) {
	c, err := client.New(ctx, b.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to buildkitd at %s: %w", b.Addr, err)
	}
	return c, nil
}

// Prune drops all of the daemon's build cache (PruneAll), so that the next build starts
// from nothing: for tests that prove a build is reproducible.
func (b *Buildkitd) Prune(ctx context.Context) error {
	c, err := b.Client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Prune(ctx, nil, client.PruneAll); err != nil {
		return fmt.Errorf("pruning the buildkitd cache: %w", err)
	}
	return nil
}

// LogTail returns the last n lines of the daemon's log.
func (b *Buildkitd) LogTail(n int) string { return Tail(b.LogFile, n) }

// Close stops the daemon (SIGTERM, then kill after 20 s), unmounts whatever it left
// mounted under Dir, and removes the socket directory it made under /tmp. State and log
// stay in Dir. It is safe to call more than once.
func (b *Buildkitd) Close() error {
	b.closeOnce.Do(func() {
		if b.proc != nil {
			b.proc.stop(20 * time.Second)
		}
		var errs []error
		if err := unmountUnder(b.Dir); err != nil {
			errs = append(errs, fmt.Errorf("unmounting under %s: %w", b.Dir, err))
		}
		if b.sockDir != "" {
			if err := os.RemoveAll(b.sockDir); err != nil {
				errs = append(errs, err)
			}
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
