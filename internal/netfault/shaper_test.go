package netfault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wso2img/wso2img/internal/netfault"
)

const mib = 1 << 20

// bulkServer serves GET /bytes (4 MiB) and swallows any body sent to POST /sink,
// answering with its length.
func bulkServer(t *testing.T) string {
	t.Helper()
	payload := bytes.Repeat([]byte("wso2img!"), 4*mib/8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bytes":
			w.Header().Set("Content-Length", "4194304")
			_, _ = w.Write(payload)
		case "/sink":
			n, _ := io.Copy(io.Discard, r.Body)
			_, _ = fmt.Fprint(w, n)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func startShaper(t *testing.T, backend string, s netfault.Shape) *netfault.Shaper {
	t.Helper()
	sh, err := netfault.StartShaper(t.Context(), backend, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sh.Close(); err != nil {
			t.Errorf("closing the shaper: %v", err)
		}
	})
	return sh
}

func plainClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{}).DialContext, DisableCompression: true}}
}

// TestShaperBandwidth: 4 MiB at 8 MiB/s takes about 0.5 s each way. The bounds are
// loose (0.4 s to 1.5 s) because the machine running the tests is busy; the lower
// bound is what the token bucket guarantees (the bucket holds 64 KiB, 8 ms of traffic).
func TestShaperBandwidth(t *testing.T) {
	backend := bulkServer(t)
	for _, tc := range []struct {
		name  string
		shape netfault.Shape
		do    func(ctx context.Context, c *http.Client, base string) error
	}{
		{"down", netfault.Shape{Down: 8 * mib}, func(ctx context.Context, c *http.Client, base string) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/bytes", nil)
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err == nil && n != 4*mib {
				err = errors.New("short body")
			}
			return err
		}},
		{"up", netfault.Shape{Up: 8 * mib}, func(ctx context.Context, c *http.Client, base string) error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/sink", bytes.NewReader(make([]byte, 4*mib)))
			resp, err := c.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			sh := startShaper(t, backend, tc.shape)
			start := time.Now()
			if err := tc.do(ctx, plainClient(), "http://"+sh.Host()); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			t.Logf("4 MiB %s at 8 MiB/s: %s", tc.name, took)
			if took < 400*time.Millisecond || took > 1500*time.Millisecond {
				t.Errorf("4 MiB %s at 8 MiB/s took %s, want about 0.5 s", tc.name, took)
			}
			st := sh.Stats()
			if moved := map[string]int64{"down": st.Down, "up": st.Up}[tc.name]; moved < 4*mib || moved > 4*mib+4096 {
				t.Errorf("stats %+v: want 4 MiB and some headers %s", st, tc.name)
			}
			if st.Conns != 1 {
				t.Errorf("stats %+v: want 1 connection", st)
			}
		})
	}
}

// TestShaperSharedLink: the bandwidth is one link for all connections, as a real
// uplink is: two parallel 4 MiB downloads at 16 MiB/s take about 0.5 s, not 0.25 s.
func TestShaperSharedLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sh := startShaper(t, bulkServer(t), netfault.Shape{Down: 16 * mib})
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sh.Host()+"/bytes", nil)
			resp, err := plainClient().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, resp.Body)
		}()
	}
	wg.Wait()
	if took := time.Since(start); took < 400*time.Millisecond || took > 1500*time.Millisecond {
		t.Errorf("2 × 4 MiB at 16 MiB/s took %s, want about 0.5 s", took)
	}
	if st := sh.Stats(); st.Conns != 2 || st.Down < 8*mib {
		t.Errorf("stats %+v: want 2 connections, 8 MiB down", st)
	}
}

// TestShaperLatency: with a 60 ms RTT the first request on a new connection costs two
// RTTs (handshake, exchange), each further request on it one RTT; without shaping the
// same requests take a few milliseconds.
func TestShaperLatency(t *testing.T) {
	const rtt = 60 * time.Millisecond
	backend := bulkServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	measure := func(host string) (first, rest time.Duration) {
		c := plainClient() // one client: its connection is kept alive and reused
		for i := range 6 {
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/ping", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if took := time.Since(start); i == 0 {
				first = took
			} else {
				rest += took
			}
		}
		return first, rest / 5
	}
	sh := startShaper(t, backend, netfault.Shape{RTT: rtt})
	first, each := measure(sh.Host())
	baseFirst, baseEach := measure(backend)
	t.Logf("RTT %s: first request %s, then %s each; unshaped %s, then %s", rtt, first, each, baseFirst, baseEach)
	if first < 2*rtt || first > 2*rtt+time.Second {
		t.Errorf("first request on a new connection took %s, want 2 × %s and a little", first, rtt)
	}
	if each < rtt || each > rtt+500*time.Millisecond {
		t.Errorf("requests on an open connection took %s each, want %s and a little", each, rtt)
	}
	if st := sh.Stats(); st.Conns != 1 {
		t.Errorf("stats %+v: want the one kept-alive connection", st)
	}
}

// TestShaperHalfClose: a client that sends its request and closes its side still gets
// the whole answer.
func TestShaperHalfClose(t *testing.T) {
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
		defer c.Close()
		in, _ := io.ReadAll(c) // until the client's half-close
		_, _ = c.Write(bytes.ToUpper(in))
	}()
	sh := startShaper(t, l.Addr().String(), netfault.Shape{RTT: 10 * time.Millisecond, Up: 1 * mib, Down: 1 * mib})
	c, err := net.Dial("tcp", sh.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "hello, wso2"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "HELLO, WSO2" {
		t.Errorf("read %q, %v; want %q and EOF", out, err, "HELLO, WSO2")
	}
}

// TestShaperPassesReset: a backend's reset reaches the client as a reset, also through
// a proxy behind a shaper.
func TestShaperPassesReset(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	be := newBackend(t)
	p := startProxy(t, be.host(), netfault.Options{Shape: netfault.Shape{RTT: 10 * time.Millisecond}})
	addRule(t, p, netfault.Rule{Path: regexp.MustCompile(`^/v2/$`), Action: netfault.Reset(netfault.BeforeBody)})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/v2/", nil)
	_, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("GET through a shaped proxy that resets: %v; want ECONNRESET", err)
	}
}

// TestShapedPush: a push through a proxy behind a 20 ms, 64 MiB/s link works, and each
// of its requests costs at least one RTT.
func TestShapedPush(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	be := newBackend(t)
	const rtt = 20 * time.Millisecond
	p := startProxy(t, be.host(), netfault.Options{Shape: netfault.Shape{Up: 64 * mib, Down: 64 * mib, RTT: rtt}})
	img := randomImage(t, 512<<10, 2)
	start := time.Now()
	if err := remote.Write(ref(t, p.Host(), "acme/app:1"), img, noRetry(ctx, p)...); err != nil {
		t.Fatalf("pushing through a shaped proxy: %v", err)
	}
	took := time.Since(start)
	// The requests run partly in parallel (2 layers at a time), but the manifest PUT
	// waits for every blob: at least HEAD, POST, PATCH, PUT of one blob and the manifest
	// PUT run one after another.
	if n := p.Count("", nil); n < 8 || took < 5*rtt {
		t.Errorf("push: %d requests in %s, want ≥ 8 requests taking ≥ %s", n, took, 5*rtt)
	}
	if st := p.Stats(); st.Up < 1*mib {
		t.Errorf("stats %+v: want ≥ 1 MiB up", st)
	}
}

// TestShaperClose: Close ends open connections and returns.
func TestShaperClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, silent
		}
	}()
	sh, err := netfault.StartShaper(t.Context(), l.Addr().String(), netfault.Shape{RTT: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", sh.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "stuck for an hour")
	waitFor(t, func() bool { return sh.Stats().Conns == 1 })
	done := make(chan error, 1)
	go func() { done <- sh.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5 s")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("read from a connection of a closed shaper succeeded")
	}
	if _, err := net.DialTimeout("tcp", sh.Host(), time.Second); err == nil {
		t.Error("a closed shaper still accepts connections")
	}
}

func TestShaperStartErrors(t *testing.T) {
	for _, tc := range []struct {
		backend string
		shape   netfault.Shape
	}{
		{"127.0.0.1", netfault.Shape{}},
		{"127.0.0.1:1", netfault.Shape{Down: -1}},
		{"127.0.0.1:1", netfault.Shape{RTT: -time.Second}},
	} {
		if sh, err := netfault.StartShaper(t.Context(), tc.backend, tc.shape); err == nil {
			sh.Close()
			t.Errorf("StartShaper(%q, %+v) succeeded", tc.backend, tc.shape)
		}
	}
	// A backend that refuses the connection: the client's connection is reset.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	sh := startShaper(t, dead, netfault.Shape{})
	c, err := net.Dial("tcp", sh.Host())
	if err == nil { // on loopback the reset may come before connect returns
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reading through a shaper whose backend is down: %v; want ECONNRESET", err)
	}
	if got := netfault.MbitPerSecond(100); got != 12_500_000 {
		t.Errorf("MbitPerSecond(100) = %d, want 12500000", got)
	}
}
