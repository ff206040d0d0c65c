package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a CNCF distribution registry (bin/registry) serving plain HTTP on
// 127.0.0.1, with its storage, config and log under Dir.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of an image reference.
	Host string
	// Dir holds storage/, config.yml and the log.
	Dir string
	// ConfigFile is the registry's configuration.
	ConfigFile string
	// LogFile is the registry's log: JSON lines, one "response completed" entry a request.
	LogFile string

	// User and Password are the credentials the registry requires, when it requires any.
	User, Password string

	proc      *process
	closeOnce sync.Once
}

// RegistryOption changes how StartRegistry configures the registry.
type RegistryOption func(*Registry)

// WithBasicAuth makes the registry require HTTP basic auth with user and password
// (htpasswd, bcrypt), for tests of credentials taken from the docker config.
func WithBasicAuth(user, password string) RegistryOption {
	return func(r *Registry) { r.User, r.Password = user, password }
}

// registryStartTimeout bounds StartRegistry when ctx has no deadline.
const registryStartTimeout = 30 * time.Second

// StartRegistry starts a registry on a free port of 127.0.0.1 with its storage, config
// and log under dir (created if missing), and returns once GET /v2/ answers. ctx bounds
// the start only; the registry runs until Close.
func StartRegistry(ctx context.Context, dir string, opts ...RegistryOption) (*Registry, error) {
	bin, err := Bin("registry")
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o755); err != nil {
		return nil, fmt.Errorf("creating the registry directory: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, registryStartTimeout)
		defer cancel()
	}
	// The free port is found by binding and closing it, so another process may take it
	// before the registry binds it: retry with a new port when that happens.
	for attempt := 1; ; attempt++ {
		r, err := startRegistryOnce(ctx, bin, dir, opts)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 5 {
			return r, err
		}
	}
}

var errPortTaken = errors.New("port already in use")

func startRegistryOnce(ctx context.Context, bin, dir string, opts []RegistryOption) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Host:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "config.yml"),
		LogFile:    filepath.Join(dir, "registry.log"),
	}
	for _, o := range opts {
		o(r)
	}
	config := registryConfig(r.Host, filepath.Join(dir, "storage"))
	if r.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(r.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: wso2img-testenv\n    path: %q\n", htpasswd)
	}
	if err := os.WriteFile(r.ConfigFile, []byte(config), 0o644); err != nil {
		return nil, fmt.Errorf("writing the registry config: %w", err)
	}
	// No traces: the registry would otherwise try to export them to an OTLP collector.
	env := childEnv("OTEL_TRACES_EXPORTER=none")
	r.proc, err = startProcess("registry", r.LogFile, env, bin, "serve", r.ConfigFile)
	if err != nil {
		return nil, err
	}
	if err := r.waitReady(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// registryConfig is the registry's configuration: filesystem storage with deletes
// allowed, JSON logs at info level (one entry a request, which Requests parses), and no
// Apache-style access log (the JSON entries say the same).
func registryConfig(addr, storage string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: wso2img-testenv
`, storage, addr)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady waits until the registry logged that it listens on its own address (so a
// stranger on a reused port is not mistaken for it) and GET /v2/ answers 200.
func (r *Registry) waitReady(ctx context.Context) error {
	listening := []byte(`"listening on ` + r.Host + `"`)
	client := &http.Client{Timeout: 2 * time.Second}
	bound := false
	for {
		if err := r.proc.exitError(); err != nil {
			if data, _ := os.ReadFile(r.LogFile); bytes.Contains(data, []byte("address already in use")) {
				return fmt.Errorf("starting the registry on %s: %w", r.Host, errPortTaken)
			}
			return fmt.Errorf("starting the registry: %w", err)
		}
		if !bound {
			data, _ := os.ReadFile(r.LogFile)
			bound = bytes.Contains(data, listening)
		}
		if bound {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Host+"/v2/", nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				// A registry that requires auth answers 401 once it is up.
				if resp.StatusCode == http.StatusOK || (r.User != "" && resp.StatusCode == http.StatusUnauthorized) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the registry on %s: %w; last lines of %s:\n%s", r.Host, ctx.Err(), r.LogFile, Tail(r.LogFile, 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the registry (SIGTERM, then kill after 10 s). Storage and log stay in Dir.
// It is safe to call more than once.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		if r.proc != nil {
			r.proc.stop(10 * time.Second)
		}
	})
	return nil
}

// LogTail returns the last n lines of the registry's log.
func (r *Registry) LogTail(n int) string { return Tail(r.LogFile, n) }

// Request is one HTTP request that the registry served, as its log records it.
type Request struct {
	Time   time.Time
	Method string // "GET", "HEAD", "PUT", …
	Path   string // URL path, e.g. "/v2/wso2is/blobs/sha256:…"
	Query  string // raw query, without "?"
	Status int    // HTTP status of the response
	Bytes  int64  // response body bytes written (a HEAD may report the bytes it would have sent)
	// Kind is what the path names: "base" (/v2/), "manifest", "blob", "upload" (a blob
	// upload session), "tags", "catalog", or "" for anything else.
	Kind string
	// Repository is the repository name ("wso2is", "acme/wso2is"); empty for base and catalog.
	Repository string
	// Reference is the tag or digest of a manifest, the digest of a blob, or the id of an
	// upload session.
	Reference string
	// Error is the registry's error code for a failed request ("blob unknown", …).
	Error     string
	UserAgent string
}

// Requests parses the registry's log into the requests it served, oldest first. The
// registry logs a request before the client has read the end of the response, so a
// request whose response a client has fully read is always there.
func (r *Registry) Requests() ([]Request, error) {
	f, err := os.Open(r.LogFile)
	if err != nil {
		return nil, fmt.Errorf("reading the registry log: %w", err)
	}
	defer f.Close()
	var reqs []Request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"response completed`)) {
			continue
		}
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("parsing registry log line %q: %w", line, err)
		}
		if !strings.HasPrefix(e.Msg, "response completed") {
			continue
		}
		reqs = append(reqs, e.request())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the registry log: %w", err)
	}
	return reqs, nil
}

// logEntry is the part of a registry JSON log line that Requests reads.
type logEntry struct {
	Msg       string    `json:"msg"`
	Time      time.Time `json:"time"`
	Method    string    `json:"http.request.method"`
	URI       string    `json:"http.request.uri"`
	UserAgent string    `json:"http.request.useragent"`
	Status    int       `json:"http.response.status"`
	Written   int64     `json:"http.response.written"`
	ErrCode   string    `json:"err.code"`
	Name      string    `json:"vars.name"`
	Ref       string    `json:"vars.reference"`
	Digest    string    `json:"vars.digest"`
	UUID      string    `json:"vars.uuid"`
}

func (e logEntry) request() Request {
	path, query, _ := strings.Cut(e.URI, "?")
	q := Request{
		Time:      e.Time,
		Method:    e.Method,
		Path:      path,
		Query:     query,
		Status:    e.Status,
		Bytes:     e.Written,
		Error:     e.ErrCode,
		UserAgent: e.UserAgent,
	}
	q.Kind, q.Repository, q.Reference = parseV2Path(path)
	// The registry's own route variables are exact where the path is ambiguous (a
	// repository may itself contain "/blobs/").
	if e.Name != "" {
		q.Repository = e.Name
	}
	for _, ref := range []string{e.Ref, e.Digest, e.UUID} {
		if ref != "" {
			q.Reference = ref
			break
		}
	}
	return q
}

// parseV2Path splits a registry API path into kind, repository and reference.
func parseV2Path(path string) (kind, repo, ref string) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", "", ""
	}
	switch {
	case rest == "":
		return "base", "", ""
	case rest == "_catalog":
		return "catalog", "", ""
	}
	for _, s := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "upload"},
		{"/manifests/", "manifest"},
		{"/blobs/", "blob"},
	} {
		if i := strings.LastIndex(rest, s.sep); i > 0 {
			return s.kind, rest[:i], rest[i+len(s.sep):]
		}
	}
	if repo, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return "tags", repo, ""
	}
	return "", "", ""
}
