package netfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Shape is the link a Shaper simulates. The zero Shape forwards bytes unchanged.
type Shape struct {
	// Up is the bandwidth from clients to the backend in bytes per second, shared by
	// all connections (one link, as a real uplink is); 0 means unlimited.
	Up int64
	// Down is the bandwidth from the backend to clients, likewise.
	Down int64
	// RTT is the round-trip time added. Every byte is held RTT/2 in each direction
	// after it passed the bandwidth limit, so each request/response exchange costs one
	// RTT more while a long transfer keeps its throughput (bytes in flight are
	// pipelined, like a TCP window). A new connection also waits one RTT before its
	// first byte moves, the cost of a real TCP handshake; so the first exchange on a
	// fresh connection costs two RTTs.
	RTT time.Duration
}

// MbitPerSecond converts a link speed in Mbit/s (100 for "100 Mbit/s") to the bytes per
// second that Shape.Up and Shape.Down take.
func MbitPerSecond(mbit float64) int64 { return int64(mbit * 1e6 / 8) }

func (s Shape) validate() error {
	switch {
	case s.Up < 0 || s.Down < 0:
		return fmt.Errorf("bandwidth up %d, down %d bytes/s: must not be negative", s.Up, s.Down)
	case s.RTT < 0:
		return fmt.Errorf("round-trip time %s must not be negative", s.RTT)
	}
	return nil
}

// maxInFlight is how many chunks a direction of a connection holds at most between
// reading and delivering (the "window"): enough for 100 Mbit/s over a 20 ms RTT many
// times over, bounded so that an unlimited fast sender cannot make the shaper buffer
// without end.
const maxInFlight = 256

// Shaper forwards TCP connections from a 127.0.0.1 port to a backend, shaping the bytes
// as its Shape says.
type Shaper struct {
	ln      net.Listener
	backend string
	shape   Shape
	up      *rate.Limiter // nil: unlimited
	down    *rate.Limiter
	upBuf   int // read size of a chunk, also the token bucket's burst
	downBuf int
	cnt     counters

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartShaper listens on a free port of 127.0.0.1 and forwards every connection to
// backend ("HOST:PORT"), shaped by s, until Close. ctx bounds the start only.
func StartShaper(ctx context.Context, backend string, s Shape) (*Shaper, error) {
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("starting a shaper for %s: %w", backend, err)
	}
	if _, _, err := net.SplitHostPort(backend); err != nil {
		return nil, fmt.Errorf("starting a shaper: backend %q is not HOST:PORT: %w", backend, err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting a shaper for %s: %w", backend, err)
	}
	sh := &Shaper{ln: ln, backend: backend, shape: s, conns: map[net.Conn]struct{}{}}
	sh.up, sh.upBuf = limiter(s.Up)
	sh.down, sh.downBuf = limiter(s.Down)
	sh.ctx, sh.cancel = context.WithCancel(context.Background())
	sh.wg.Add(1)
	go sh.serve()
	return sh, nil
}

// limiter returns the token bucket for bytesPerSec (nil when unlimited) and the chunk
// size to read: about 10 ms of traffic, between 1 KiB and 64 KiB, so that the limit is
// smooth at any rate; the bucket holds one chunk.
func limiter(bytesPerSec int64) (*rate.Limiter, int) {
	const minChunk, maxChunk = 1 << 10, 64 << 10
	if bytesPerSec == 0 {
		return nil, 32 << 10
	}
	chunk := int(min(max(bytesPerSec/100, minChunk), maxChunk))
	return rate.NewLimiter(rate.Limit(bytesPerSec), chunk), chunk
}

// Host is the shaper's "127.0.0.1:PORT".
func (s *Shaper) Host() string { return s.ln.Addr().String() }

// Stats returns the bytes delivered so far in each direction and the connections
// accepted.
func (s *Shaper) Stats() Stats { return s.cnt.stats() }

// Close stops listening, closes every connection and waits for the shaper's goroutines
// to end. It is safe to call more than once.
func (s *Shaper) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.ln.Close()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("closing the shaper on %s: %w", s.Host(), err)
	}
	return nil
}

func (s *Shaper) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed; Accept on a loopback listener fails for no other reason
		}
		s.cnt.conns.Add(1)
		if !s.track(c) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}
}

// track remembers c so that Close can close it; false when the shaper is closed.
func (s *Shaper) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Shaper) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// handle forwards one client connection.
func (s *Shaper) handle(client net.Conn) {
	defer s.untrack(client)
	defer client.Close()
	// The handshake a real link would cost: nothing moves before one RTT has passed.
	established := time.Now().Add(s.shape.RTT)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	d := net.Dialer{Timeout: 10 * time.Second}
	backend, err := d.DialContext(ctx, "tcp", s.backend)
	if err != nil {
		resetConn(client) // the client sees what it would see from a dead server
		return
	}
	if !s.track(backend) {
		backend.Close()
		return
	}
	defer s.untrack(backend)
	defer backend.Close()

	oneWay := s.shape.RTT / 2
	var writers, readers sync.WaitGroup
	writers.Add(2)
	go func() {
		defer writers.Done()
		s.pump(ctx, cancel, &readers, client, backend, s.up, s.upBuf, established, oneWay, &s.cnt.up)
	}()
	go func() {
		defer writers.Done()
		s.pump(ctx, cancel, &readers, backend, client, s.down, s.downBuf, established, oneWay, &s.cnt.down)
	}()
	writers.Wait()
	// A reader may still block in Read: closing both sides ends it.
	cancel()
	client.Close()
	backend.Close()
	readers.Wait()
}

// chunk is bytes read from one side, due for delivery to the other at due; err ends the
// stream (io.EOF for a clean end).
type chunk struct {
	b   []byte
	due time.Time
	err error
}

// pump moves bytes from src to dst: a reader takes them through the token bucket and
// stamps each chunk with its delivery time, a writer delivers each chunk at that time.
// A clean end of src half-closes dst; an error (a reset) resets dst and cancels the
// connection, as a router in the middle would pass the reset on.
func (s *Shaper) pump(ctx context.Context, cancel context.CancelFunc, readers *sync.WaitGroup, src, dst net.Conn, lim *rate.Limiter, bufSize int, established time.Time, oneWay time.Duration, delivered *atomic.Int64) {
	chunks := make(chan chunk, maxInFlight)
	readers.Add(1)
	go func() {
		defer readers.Done()
		for {
			buf := make([]byte, bufSize)
			n, err := src.Read(buf)
			if n > 0 {
				if lim != nil {
					if werr := lim.WaitN(ctx, n); werr != nil {
						return // the connection is being torn down
					}
				}
				due := time.Now()
				if due.Before(established) {
					due = established
				}
				select {
				case chunks <- chunk{b: buf[:n], due: due.Add(oneWay)}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				select {
				case chunks <- chunk{err: err}:
				case <-ctx.Done():
				}
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		var c chunk
		select {
		case c = <-chunks:
		case <-ctx.Done():
			return
		}
		if c.err != nil {
			if errors.Is(c.err, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
					return
				}
			}
			resetConn(dst)
			cancel()
			return
		}
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
		// Counted before the write, so that a reader of Stats that has received the
		// bytes never sees a smaller count; a short write takes back the rest.
		delivered.Add(int64(len(c.b)))
		n, err := dst.Write(c.b)
		if err != nil {
			delivered.Add(int64(n - len(c.b)))
			resetConn(src)
			cancel()
			return
		}
	}
}
