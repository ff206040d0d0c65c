// Package buildkitd connects wso2img to a BuildKit daemon: the one the user names
// (--buildkit-host, BUILDKIT_HOST), else the system one on the default socket, else a
// private one it starts under its state folder and reuses on the next run.
//
// It also owns what any buildkitd started for wso2img looks like (its config file,
// how to tell it is ready), so that tests and the demo start theirs the same way.
package buildkitd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// DefaultAddr is where a system buildkitd listens.
const DefaultAddr = "unix:///run/buildkit/buildkitd.sock"

// Options say which daemon to use.
type Options struct {
	// Host is the daemon's address; "" means the default socket or a private daemon.
	Host string
	// StateDir holds the private daemon; default $XDG_STATE_HOME/wso2img/buildkitd.
	StateDir string
	// Insecure registries ("HOST:PORT") a private daemon reaches over plain HTTP.
	Insecure []string
	// Log receives what the connection does ("started buildkitd …"); nil is silent.
	Log io.Writer
}

// Connect returns a client of a daemon that answers, starting a private one if needed.
func Connect(ctx context.Context, o Options) (*client.Client, error) {
	c, _, err := ConnectAddr(ctx, o)
	return c, err
}

// ConnectAddr is Connect, and says which daemon answered: its address, for messages
// that must name it (a daemon lost mid-build).
func ConnectAddr(ctx context.Context, o Options) (*client.Client, string, error) {
	if o.Host != "" {
		c, err := dial(ctx, o.Host, 10*time.Second)
		if err != nil {
			return nil, "", fmt.Errorf("cannot reach BuildKit at %s (--buildkit-host / BUILDKIT_HOST): %w; leave both unset to let wso2img start its own buildkitd", o.Host, err)
		}
		return c, o.Host, nil
	}
	if _, err := os.Stat(strings.TrimPrefix(DefaultAddr, "unix://")); err == nil {
		if c, err := dial(ctx, DefaultAddr, 3*time.Second); err == nil {
			if len(o.Insecure) > 0 {
				logf(o.Log, "using the system buildkitd at %s: it must itself be configured for the plain-HTTP registries %s", DefaultAddr, strings.Join(o.Insecure, ", "))
			}
			return c, DefaultAddr, nil
		}
	}
	c, err := private(ctx, o)
	if err != nil {
		return nil, "", err
	}
	return c, "unix://" + SocketPath(privateDir(o)) + " (wso2img's own buildkitd)", nil
}

// dial connects and checks that the daemon answers with a worker.
func dial(ctx context.Context, addr string, timeout time.Duration) (*client.Client, error) {
	c, err := client.New(ctx, addr)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, err := c.ListWorkers(cctx)
	if err == nil && len(ws) == 0 {
		err = errors.New("the daemon has no workers")
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// privateDir is the state folder of wso2img's own daemon ("" when there is no home).
func privateDir(o Options) string {
	if o.StateDir != "" {
		return o.StateDir
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "wso2img", "buildkitd")
}

// private connects to wso2img's own daemon, (re)starting it when it is not running or
// was started with another configuration.
func private(ctx context.Context, o Options) (*client.Client, error) {
	dir := privateDir(o)
	if dir == "" {
		return nil, errors.New("finding a state folder for buildkitd: no home folder; set XDG_STATE_HOME or --state-dir")
	}
	bin, runc, err := binaries()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	// Two runs starting at once must not start two daemons on one state folder.
	unlock, err := lock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()
	sock := SocketPath(dir)
	addr := "unix://" + sock
	conf := Config(filepath.Join(dir, "root"), runc, filepath.Join(filepath.Dir(sock), "otel.sock"), o.Insecure)
	stampFile := filepath.Join(dir, "config.sha256")
	sum := sha256.Sum256([]byte(conf + bin))
	stamp := hex.EncodeToString(sum[:])

	if c, err := dial(ctx, addr, 3*time.Second); err == nil {
		if old, _ := os.ReadFile(stampFile); string(old) == stamp {
			return c, nil
		}
		c.Close()
		logf(o.Log, "restarting wso2img's buildkitd in %s with a new configuration", dir)
		Stop(dir)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("no BuildKit daemon answers, and starting wso2img's own needs root: run as root, or start buildkitd (rootless: buildkitd-rootless.sh) and pass --buildkit-host")
	}
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	_ = os.Remove(sock)
	logFile := filepath.Join(dir, "buildkitd.log")
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, Args(filepath.Join(dir, "buildkitd.toml"), filepath.Join(dir, "root"), addr)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(runc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	// Its own session, so that it outlives this run and the next one reuses it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logf(o.Log, "starting buildkitd (%s) in %s", bin, dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("buildkitd exited (%v); see %s", err, logFile)
		default:
			return nil
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := WaitReady(wctx, addr, alive); err != nil {
		return nil, err
	}
	if err := os.WriteFile(stampFile, []byte(stamp), 0o644); err != nil {
		return nil, err
	}
	return dial(ctx, addr, 10*time.Second)
}

// lock takes an exclusive lock on file, waiting for it.
func lock(file string) (func(), error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", file, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Stop ends the private daemon kept in dir, if one runs.
func Stop(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "buildkitd.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if p.Signal(syscall.Signal(0)) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = p.Kill()
}

// binaries finds buildkitd (on $PATH, beside the wso2img executable, or in ./bin) and runc.
func binaries() (string, string, error) {
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	dirs = append(dirs, "bin")
	bin, err := exec.LookPath("buildkitd")
	if err != nil {
		for _, d := range dirs {
			if p := filepath.Join(d, "buildkitd"); isExecutable(p) {
				bin, err = filepath.Abs(p)
				break
			}
		}
	}
	if bin == "" || err != nil {
		return "", "", errors.New("no BuildKit daemon answers and buildkitd is not installed: install buildkitd (make tools builds it into ./bin) or pass --buildkit-host")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
			if p := filepath.Join(d, "runc"); isExecutable(p) {
				return bin, p, nil
			}
		}
		return "", "", errors.New("buildkitd needs runc: install it (apt-get install runc)")
	}
	return bin, runc, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// SocketPath is where a daemon kept in dir listens: dir/buildkitd.sock when that fits a
// unix socket path (108 bytes), else a folder under /tmp named after dir.
func SocketPath(dir string) string {
	sock := filepath.Join(dir, "buildkitd.sock")
	if len(sock) <= 100 {
		return sock
	}
	sum := sha256.Sum256([]byte(dir))
	short := filepath.Join(os.TempDir(), "wso2img-bk-"+hex.EncodeToString(sum[:6]))
	_ = os.MkdirAll(short, 0o700)
	return filepath.Join(short, "buildkitd.sock")
}

// Args are buildkitd's flags for a config file, state root and address.
func Args(configFile, root, addr string) []string {
	return []string{"--config", configFile, "--root", root, "--addr", addr, "--oci-worker=true", "--containerd-worker=false"}
}

// Config is the buildkitd.toml of a daemon started for wso2img: the OCI worker running
// runc on overlayfs with host networking (there are no RUN steps to isolate, and no CNI
// to set up), CDI off, the trace socket beside the API socket so two daemons never share
// one, and the registries it reaches over plain HTTP.
func Config(root, runc, otelSocket string, insecure []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "root = %s\n\n", strconv.Quote(root))
	fmt.Fprintf(&b, "[otel]\n  socketPath = %s\n\n", strconv.Quote(otelSocket))
	b.WriteString("[cdi]\n  disabled = true\n\n")
	fmt.Fprintf(&b, "[worker.oci]\n  enabled = true\n  binary = %s\n  snapshotter = \"overlayfs\"\n  networkMode = \"host\"\n\n", strconv.Quote(runc))
	b.WriteString("[worker.containerd]\n  enabled = false\n")
	hosts := slices.Clone(insecure)
	slices.Sort(hosts)
	for _, host := range slices.Compact(hosts) {
		fmt.Fprintf(&b, "\n[registry.%s]\n  http = true\n  insecure = true\n", strconv.Quote(host))
	}
	return b.String()
}

// WaitReady waits until the daemon at addr lists a worker, or ctx ends, or exited
// (which reports a daemon that died while starting) returns an error.
func WaitReady(ctx context.Context, addr string, exited func() error) error {
	var lastErr error
	for {
		if err := exited(); err != nil {
			return err
		}
		if c, err := dial(ctx, addr, 2*time.Second); err == nil {
			c.Close()
			return nil
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for buildkitd on %s: %w (last: %v)", addr, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// RemoveStaleSocket removes a socket no daemon answers on (left by a killed buildkitd),
// and refuses to start a second daemon on a socket that is in use.
func RemoveStaleSocket(sock string) error {
	if _, err := os.Lstat(sock); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("a daemon already listens on %s: stop it first", sock)
	}
	if err := os.Remove(sock); err != nil {
		return fmt.Errorf("removing the stale socket: %w", err)
	}
	return nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "wso2img: "+format+"\n", args...)
	}
}
