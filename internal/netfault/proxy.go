package netfault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configure a Proxy; the zero Options serve plain HTTP, unshaped, silently.
type Options struct {
	// TLS serves HTTPS (HTTP/1.1 only) with a certificate for 127.0.0.1 signed by a CA
	// made for this proxy; CAPEM returns the CA, Transport trusts it.
	TLS bool
	// Shape, when not the zero Shape, puts a Shaper in front of the proxy: Host is then
	// the shaper's port, and every byte between clients and the proxy is shaped.
	Shape Shape
	// BackendTLS configures the connection to an https:// backend; nil uses the system's
	// roots.
	BackendTLS *tls.Config
	// Log receives one line for each request handled and the HTTP server's own errors;
	// nil discards them.
	Log io.Writer
}

// Proxy is an HTTP reverse proxy on 127.0.0.1 in front of one backend, which mistreats
// the requests its rules fire on. Its methods are safe for concurrent use.
type Proxy struct {
	backend *url.URL // scheme://host of the backend
	scheme  string   // "http" or "https": what clients speak to the proxy
	host    string   // what clients dial: the proxy's or its shaper's 127.0.0.1:PORT
	caPEM   []byte
	srv     *http.Server
	ln      net.Listener
	shaper  *Shaper
	rp      *httputil.ReverseProxy
	logger  *log.Logger // nil: no request lines
	cnt     counters

	ctx    context.Context // canceled by Close, which ends stalls and delays
	cancel context.CancelFunc

	mu     sync.Mutex
	rules  []*ruleState
	added  int            // rules added so far, for default names
	fired  map[string]int // by rule name, since start or ClearLog
	log    []*Entry
	active int // requests being handled
	closed bool
}

// closeWait bounds how long Close waits for requests in flight to end.
const closeWait = 10 * time.Second

// StartProxy starts a proxy on a free port of 127.0.0.1 in front of backend: "HOST:PORT"
// (plain HTTP) or an http:// or https:// URL with no path. ctx bounds the start only;
// the proxy runs until Close.
func StartProxy(ctx context.Context, backend string, opts Options) (*Proxy, error) {
	be, err := parseBackend(backend)
	if err != nil {
		return nil, err
	}
	if err := opts.Shape.validate(); err != nil {
		return nil, fmt.Errorf("starting a proxy for %s: %w", backend, err)
	}
	p := &Proxy{backend: be, scheme: "http", fired: map[string]int{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	errLog := log.New(io.Discard, "", 0)
	if opts.Log != nil {
		p.logger = log.New(opts.Log, "netfault: ", log.Lmicroseconds)
		errLog = p.logger
	}

	var lc net.ListenConfig
	raw, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting a proxy for %s: %w", backend, err)
	}
	p.ln = countingListener{Listener: raw, c: &p.cnt}
	if opts.TLS {
		caPEM, cert, err := newServerTLS()
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("starting a TLS proxy for %s: %w", backend, err)
		}
		p.caPEM, p.scheme = caPEM, "https"
		// HTTP/1.1 only: a reset or a stall needs the connection to itself (HTTP/2
		// cannot hijack one), and BuildKit and go-containerregistry both speak it.
		p.ln = tls.NewListener(p.ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12})
	}
	p.host = raw.Addr().String()

	bt := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     opts.BackendTLS,
		DisableCompression:  true, // pass the client's Accept-Encoding and the bytes as they are
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { pr.SetURL(p.backend) },
		Transport:      bt,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.backendError,
		ErrorLog:       errLog,
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          errLog,
		BaseContext:       func(net.Listener) context.Context { return p.ctx },
	}
	go func() { _ = p.srv.Serve(p.ln) }() // returns ErrServerClosed on Close

	if opts.Shape != (Shape{}) {
		p.shaper, err = StartShaper(ctx, p.host, opts.Shape)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.host = p.shaper.Host()
	}
	return p, nil
}

func parseBackend(backend string) (*url.URL, error) {
	s := backend
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("starting a proxy: backend %q is not HOST:PORT or a URL: %w", backend, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("starting a proxy: backend %q: want HOST:PORT or http(s)://HOST:PORT with no path", backend)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Host is "127.0.0.1:PORT", what clients dial: the registry part of an image reference,
// and the key of a buildkitd.toml [registry."…"] section.
func (p *Proxy) Host() string { return p.host }

// URL is "http://127.0.0.1:PORT" (https with Options.TLS).
func (p *Proxy) URL() string { return p.scheme + "://" + p.host }

// CAPEM returns the PEM certificate of the CA that signed the proxy's certificate (for
// buildkitd.toml's ca = […] or an SSL_CERT_FILE); nil when the proxy serves plain HTTP.
func (p *Proxy) CAPEM() []byte { return p.caPEM }

// Transport returns a new HTTP/1.1 transport that trusts the proxy's CA (when it serves
// TLS) and uses no proxy from the environment, for http.Client or
// remote.WithTransport.
func (p *Proxy) Transport() *http.Transport {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	if p.caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(p.caPEM)
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return t
}

// Stats returns the bytes that crossed the proxy's own socket (behind a shaper, those
// are the bytes the shaper delivered) and the connections it accepted.
func (p *Proxy) Stats() Stats { return p.cnt.stats() }

// Add puts r after the rules in place and returns its name. It fails when the name is
// taken or the action is not one the constructors make.
func (p *Proxy) Add(r Rule) (string, error) {
	if err := r.Action.validate(); err != nil {
		return "", fmt.Errorf("adding rule %q: %w", r.Name, err)
	}
	if r.Skip < 0 || r.Times < 0 {
		return "", fmt.Errorf("adding rule %q: skip %d and times %d must not be negative", r.Name, r.Skip, r.Times)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.added++
	if r.Name == "" {
		r.Name = fmt.Sprintf("rule-%d", p.added)
	}
	for _, rs := range p.rules {
		if rs.Name == r.Name {
			return "", fmt.Errorf("adding rule %q: a rule of that name is in place", r.Name)
		}
	}
	p.rules = append(p.rules, &ruleState{Rule: r})
	return r.Name, nil
}

// Remove takes out the rule named name; false when there is none.
func (p *Proxy) Remove(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, rs := range p.rules {
		if rs.Name == name {
			p.rules = append(p.rules[:i:i], p.rules[i+1:]...)
			return true
		}
	}
	return false
}

// Clear takes out every rule: from now on every request passes through. Requests that
// a rule already fired on (a stall, say) carry on.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Close stops the proxy (and its shaper): it stops listening, closes every connection,
// ends stalls and delays, and waits up to 10 s for the requests in flight to end. It is
// safe to call more than once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()

	var errs []error
	if p.shaper != nil {
		errs = append(errs, p.shaper.Close())
	}
	p.cancel()
	if err := p.srv.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the proxy on %s: %w", p.host, err))
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	if err := p.WaitIdle(ctx); err != nil {
		errs = append(errs, fmt.Errorf("closing the proxy on %s: %w", p.host, err))
	}
	p.rp.Transport.(*http.Transport).CloseIdleConnections()
	return errors.Join(errs...)
}

// route logs r's entry, counts it in flight and finds the rule that fires on it.
func (p *Proxy) route(r *http.Request, e *Entry) Action {
	p.mu.Lock()
	p.log = append(p.log, e)
	p.active++
	rules := append([]*ruleState(nil), p.rules...)
	p.mu.Unlock()
	for _, rs := range rules {
		// The predicate runs without the lock: it may be slow, or look at the proxy.
		if !rs.matches(r) {
			continue
		}
		p.mu.Lock()
		rs.seen++
		if rs.seen > rs.Skip && (rs.Times == 0 || rs.fired < rs.Times) {
			rs.fired++
			p.fired[rs.Name]++
			e.Rule, e.Action = rs.Name, rs.Action.String()
			p.mu.Unlock()
			return rs.Action
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	e.Action = "pass"
	p.mu.Unlock()
	return Action{}
}

// exchange is what the handling of one request learns, written by one goroutine (the
// handler, and the reverse proxy's callbacks it calls) and copied into the Entry at the
// end.
type exchange struct {
	front         string // scheme://host the client used, for rewriting backend URLs
	backendStatus int
	location      string
	err           error
}

type exchangeKey struct{}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	e := &Entry{Time: start, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	act := p.route(r, e)

	ctx, cancel := context.WithCancel(r.Context()) // r.Context ends with the client or Close
	defer cancel()
	x := &exchange{front: p.scheme + "://" + r.Host}
	body := &countingBody{ReadCloser: r.Body}
	r = r.WithContext(context.WithValue(ctx, exchangeKey{}, x))
	r.Body = body
	rec := &recorder{ResponseWriter: w}
	// Deferred, so that it also runs when the reverse proxy aborts a truncated answer
	// by panicking with http.ErrAbortHandler.
	defer func() {
		if x.err == nil && ctx.Err() != nil && rec.status == 0 {
			x.err = fmt.Errorf("client gone or proxy closed: %w", context.Cause(ctx))
		}
		p.finish(e, start, rec, body, x)
	}()

	switch act.kind {
	case actPass:
		p.rp.ServeHTTP(rec, r)
	case actDelay:
		if sleep(ctx, act.d) {
			p.rp.ServeHTTP(rec, r)
		}
	case actRespond:
		if err := drain(body); err != nil {
			x.err = err
			return
		}
		respond(rec, r, act.status, act.header, fmt.Sprintf("netfault: injected %d for %s %s", act.status, r.Method, r.URL.Path))
	case actReset:
		switch act.phase {
		case AfterBody:
			if err := drain(body); err != nil {
				x.err = err
			}
		case AfterBackend:
			p.rp.ServeHTTP(&discard{h: http.Header{}}, r)
		}
		x.err = errors.Join(x.err, hijack(w, true))
	case actStall:
		if err := drain(body); err != nil {
			x.err = err
			return
		}
		sleep(ctx, act.d)
		x.err = errors.Join(x.err, hijack(w, false))
	case actStallBody:
		p.rp.ServeHTTP(&truncator{recorder: rec, limit: act.n, stall: func() { sleep(ctx, act.d) }}, r)
	}
}

// finish completes e from what handling the request learned.
func (p *Proxy) finish(e *Entry, start time.Time, rec *recorder, body *countingBody, x *exchange) {
	p.mu.Lock()
	e.Status = rec.status
	e.BackendStatus = x.backendStatus
	e.Location = x.location
	e.BytesIn, e.BytesOut = body.n, rec.n
	if x.err != nil {
		e.Err = x.err.Error()
	}
	e.Duration = time.Since(start)
	e.Done = true
	p.active--
	line := *e
	p.mu.Unlock()
	if p.logger != nil {
		rule := ""
		if line.Rule != "" {
			rule = " rule " + line.Rule + ":"
		}
		msg := ""
		if line.Err != "" {
			msg = " (" + line.Err + ")"
		}
		p.logger.Printf("%s %s ->%s %s, status %d, in %d B, out %d B, %s%s", line.Method, line.Path, rule, line.Action, line.Status, line.BytesIn, line.BytesOut, line.Duration.Round(time.Millisecond), msg)
	}
}

// modifyResponse rewrites the backend's absolute URLs in the headers a client follows,
// so that the client keeps talking to the proxy: the distribution registry answers
// blob-upload requests with an absolute Location.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	x, _ := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return nil
	}
	x.backendStatus = resp.StatusCode
	base := p.backend.String()
	for _, h := range []string{"Location", "Content-Location", "Link"} {
		vals := resp.Header.Values(h)
		for i, v := range vals {
			vals[i] = rewriteURL(v, base, x.front)
		}
	}
	x.location = resp.Header.Get("Location")
	return nil
}

// rewriteURL replaces every occurrence of base ("http://127.0.0.1:5000") in v that is
// followed by a path, a query or nothing (so that port 5000 does not match 50001).
func rewriteURL(v, base, front string) string {
	var b strings.Builder
	for {
		i := strings.Index(v, base)
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		end := i + len(base)
		b.WriteString(v[:i])
		if end == len(v) || strings.ContainsRune("/?#>;, ", rune(v[end])) {
			b.WriteString(front)
		} else {
			b.WriteString(base)
		}
		v = v[end:]
	}
}

// backendError answers 502 when the backend could not be reached or failed mid-answer.
func (p *Proxy) backendError(w http.ResponseWriter, r *http.Request, err error) {
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	if x != nil {
		x.err = fmt.Errorf("forwarding to %s: %w", p.backend, err)
	}
	if r.Context().Err() != nil {
		return // the client is gone; nobody reads an answer
	}
	respond(w, r, http.StatusBadGateway, nil, fmt.Sprintf("netfault: forwarding %s %s to %s: %v", r.Method, r.URL.Path, p.backend, err))
}

// respond writes a registry-style error answer.
func respond(w http.ResponseWriter, r *http.Request, status int, header http.Header, message string) {
	type regError struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []regError `json:"errors"`
	}{[]regError{{Code: errorCode(status, r.URL.Path), Message: message}}})
	h := w.Header()
	for k, vs := range header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// hijack takes the client's connection and closes it: with a reset (RST) or, when
// reset is false, with a plain close (FIN, the client reads EOF).
func hijack(w http.ResponseWriter, reset bool) error {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("taking over the client connection: %w", err)
	}
	if reset {
		return resetConn(conn)
	}
	return conn.Close()
}

// sleep waits d (0: forever) or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		<-ctx.Done()
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain reads the request body to its end, as a server does before it answers.
func drain(body io.Reader) error {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("reading the request body: %w", err)
	}
	return nil
}

// countingBody counts the request body bytes read.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// recorder notes the status and counts the body bytes sent to the client.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

// FlushError and Unwrap let http.ResponseController (which the reverse proxy uses)
// reach the connection.
func (r *recorder) FlushError() error { return http.NewResponseController(r.ResponseWriter).Flush() }

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// truncator passes the first limit body bytes, flushes them, stalls, then fails the
// write so that the reverse proxy aborts the connection.
type truncator struct {
	*recorder
	limit   int64
	written int64
	stall   func()
}

var errTruncated = errors.New("netfault: body truncated by a StallBody rule")

func (t *truncator) Write(b []byte) (int, error) {
	if left := t.limit - t.written; int64(len(b)) > left {
		n, err := t.recorder.Write(b[:left])
		t.written += int64(n)
		if err != nil {
			return n, err
		}
		if err := t.FlushError(); err != nil {
			return n, err
		}
		t.stall()
		return n, errTruncated
	}
	n, err := t.recorder.Write(b)
	t.written += int64(n)
	return n, err
}

// discard is a ResponseWriter that drops the answer (a reset follows it).
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
