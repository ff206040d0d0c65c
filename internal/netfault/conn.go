package netfault

import (
	"net"
	"sync/atomic"
)

// Stats are the bytes a Proxy or Shaper carried, counted on the client side.
type Stats struct {
	// Up is the bytes received from clients (toward the backend); Down the bytes sent
	// to clients. A Proxy counts HTTP (and TLS) bytes as they cross its socket; a Shaper
	// counts the bytes it delivered.
	Up, Down int64
	// Conns is the client connections accepted.
	Conns int64
}

// counters are the atomics behind Stats.
type counters struct {
	up, down, conns atomic.Int64
}

func (c *counters) stats() Stats {
	return Stats{Up: c.up.Load(), Down: c.down.Load(), Conns: c.conns.Load()}
}

// countingListener counts the bytes of every connection it accepts.
type countingListener struct {
	net.Listener
	c *counters
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.c.conns.Add(1)
	return &countingConn{Conn: conn, c: l.c}, nil
}

type countingConn struct {
	net.Conn
	c *counters
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.c.up.Add(int64(n))
	return n, err
}

// Write counts before it writes, so that a client that has received the bytes never
// sees a smaller count in Stats; a short write takes back the rest.
func (c *countingConn) Write(b []byte) (int, error) {
	c.c.down.Add(int64(len(b)))
	n, err := c.Conn.Write(b)
	c.c.down.Add(int64(n - len(b)))
	return n, err
}

// NetConn returns the wrapped connection (the same method name as tls.Conn's).
func (c *countingConn) NetConn() net.Conn { return c.Conn }

// resetConn closes c with a TCP RST instead of a FIN (SO_LINGER 0), looking through
// wrappers (tls.Conn, countingConn) for the TCP connection; a connection that is not
// TCP is just closed.
func resetConn(c net.Conn) error {
	for inner := c; inner != nil; {
		if tc, ok := inner.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
			return tc.Close()
		}
		w, ok := inner.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		inner = w.NetConn()
	}
	return c.Close()
}
