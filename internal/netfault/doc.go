// Package netfault puts a misbehaving network between a client and a server on
// loopback, for wso2img's fault-matrix tests and its benchmarks.
//
// It owns two things:
//
//   - Proxy (StartProxy): an HTTP/1.1 reverse proxy on a free 127.0.0.1 port, in front of
//     one backend (a registry). Rules, added and removed while it runs, make chosen
//     requests fail: an error status with a registry-style JSON body, a TCP reset, a
//     stall, a truncated body, a delay. Every request is logged (method, path, rule,
//     status, bytes) for assertions. Location headers that name the backend are
//     rewritten to name the proxy, so that clients keep talking to it (the distribution
//     registry answers with absolute upload URLs). It can serve TLS with a CA it makes.
//   - Shaper (StartShaper): a TCP forwarder that limits bandwidth (a token bucket shared
//     by all connections, each direction on its own) and adds round-trip latency, for any
//     protocol. A Proxy can be started behind one (Options.Shape).
//
// A bare Shaper in front of a registry is enough for benchmarks: it forwards the Host
// header unchanged, and the distribution registry builds its upload URLs from Host, so
// clients stay on the shaper. The Proxy sends the backend its own host name (as a proxy
// in front of a real registry would) and rewrites what comes back.
//
// It is for tests and hack/ programs only: product code (cmd, build, sign, verify,
// profiles, publish) must never import it. It listens on 127.0.0.1 only, keeps no global
// state, prints nothing unless given a log writer, and Close stops every goroutine it
// started, stalled connections included.
package netfault
