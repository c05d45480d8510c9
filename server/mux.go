package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// Serving gRPC and HTTP/1.1 on one port
//
// KurrentDB answers HTTP/1.1 (/ping, /info, /gossip, …) on the port of its
// gRPC API. The server tells the two apart per connection, as a client
// opens it: under TLS by the protocol the handshake agreed (ALPN "h2" is
// gRPC, "http/1.1" is HTTP; a client that offers both, a browser, gets
// HTTP/1.1, see withALPN), otherwise, and when the client offered no
// protocol, by its first bytes: HTTP/2's connection preface is gRPC,
// anything else is HTTP/1.x. The connection then goes to the gRPC server
// or to the HTTP server, whole; neither ever sees the other's.

// http2Preface opens every HTTP/2 connection (RFC 9113, 3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// detectTimeout bounds how long a new connection may take to say which
// protocol it speaks (its TLS handshake and first bytes).
const detectTimeout = 10 * time.Second

// connQueue is a net.Listener whose connections a router hands over.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	// onClose runs when the queue closes: it closes the listener the
	// router accepts from.
	onClose func()
}

func newConnQueue(addr net.Addr, onClose func()) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{}), onClose: onClose}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() {
		close(q.done)
		if q.onClose != nil {
			q.onClose()
		}
	})
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// hand gives c to the queue's server, or closes it when the queue is
// closed.
func (q *connQueue) hand(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		c.Close()
	}
}

// router accepts the connections of one listener and hands each to the
// gRPC or the HTTP queue.
type router struct {
	lis        net.Listener
	tls        *tls.Config // nil: plaintext
	grpc, http *connQueue
	log        *slog.Logger
	peers      *peerLog
}

// run accepts connections until the listener closes; each is told apart on
// its own goroutine, so a slow client holds back no other.
func (r *router) run() {
	defer r.grpc.Close()
	defer r.http.Close()
	for {
		c, err := r.lis.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return
		}
		go r.route(c)
	}
}

func (r *router) route(c net.Conn) {
	if err := c.SetDeadline(time.Now().Add(detectTimeout)); err != nil {
		c.Close()
		return
	}
	var conn net.Conn = c
	if r.tls != nil {
		tc := tls.Server(c, r.tls)
		ctx, cancel := context.WithTimeout(context.Background(), detectTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if kind, rh, ok := handshakeMismatch(err); ok {
				r.peers.mismatch(kind, c.RemoteAddr())
				if rh != nil {
					answerPlaintext(rh)
				}
			} else {
				r.log.Debug("TLS handshake failed", "peer", c.RemoteAddr().String(), "err", err)
			}
			c.Close()
			return
		}
		conn = tc
		switch tc.ConnectionState().NegotiatedProtocol {
		case "h2":
			r.deliver(r.grpc, tc)
			return
		case "http/1.1":
			r.deliver(r.http, tc)
			return
		}
	}
	br := bufio.NewReaderSize(conn, len(http2Preface))
	if r.tls == nil {
		if b, err := br.Peek(2); err == nil && tlsRecordStart(b) {
			r.peers.mismatch(mismatchTLSOnPlaintext, c.RemoteAddr())
			c.Close()
			return
		}
	}
	isH2 := true
	for i := range len(http2Preface) {
		b, err := br.Peek(i + 1)
		if err != nil {
			if i == 0 || !errors.Is(err, io.EOF) {
				conn.Close()
				return
			}
			isH2 = false // a short request that is no preface
			break
		}
		if b[i] != http2Preface[i] {
			isH2 = false
			break
		}
	}
	pc := &peekedConn{Conn: conn, r: br}
	if isH2 {
		r.deliver(r.grpc, pc)
	} else {
		r.deliver(r.http, pc)
	}
}

// deliver clears the detection deadline and hands c over.
func (r *router) deliver(q *connQueue, c net.Conn) {
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return
	}
	if q == r.grpc {
		c = &memoConn{Conn: c, addr: &memoAddr{Addr: c.RemoteAddr()}}
	}
	if r.log.Enabled(context.Background(), slog.LevelDebug) {
		_, secure := tlsState(c)
		proto := "http/1"
		if q == r.grpc {
			// The HTTP server logs its connections' end itself, and
			// must see a *tls.Conn to know a request came over TLS.
			proto = "grpc"
			c = &loggedConn{Conn: c, log: r.log, proto: proto, opened: time.Now()}
		}
		r.log.Debug("connection", "peer", c.RemoteAddr().String(), "protocol", proto, "tls", secure)
	}
	q.hand(c)
}

// peekedConn is a connection whose first bytes were read to tell its
// protocol apart; reads return them first.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// tlsState returns the TLS state of a routed connection, and false for a
// plaintext one.
func tlsState(c net.Conn) (tls.ConnectionState, bool) {
	if lc, ok := c.(*loggedConn); ok {
		c = lc.Conn
	}
	if mc, ok := c.(*memoConn); ok {
		c = mc.Conn
	}
	if pc, ok := c.(*peekedConn); ok {
		c = pc.Conn
	}
	if tc, ok := c.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// routedTLS are the gRPC server's transport credentials when the router
// terminates TLS: the handshake is done, and each connection reports its
// TLS state as gRPC's own TLS credentials would (peer.AuthInfo is a
// credentials.TLSInfo), so that a service can read the client's
// certificate.
type routedTLS struct{}

func (routedTLS) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server: routed TLS credentials serve only")
}

func (routedTLS) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	st, ok := tlsState(c)
	if !ok {
		return nil, nil, errors.New("server: a plaintext connection reached the TLS server")
	}
	return c, credentials.TLSInfo{State: st, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (routedTLS) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c routedTLS) Clone() credentials.TransportCredentials { return c }

func (routedTLS) OverrideServerName(string) error { return nil }

// withALPN returns a copy of cfg that offers both protocols: HTTP/1.1 to a
// client that offers it, else gRPC's h2. The gRPC clients offer h2 alone;
// a browser offers both, and must reach the HTTP side (the web UI), which
// serves HTTP/1.1 only. A client that offers neither gets neither, and is
// told apart by its first bytes.
func withALPN(cfg *tls.Config) *tls.Config {
	protos := func(c *tls.Config, hello *tls.ClientHelloInfo) *tls.Config {
		out := c.Clone()
		out.GetConfigForClient = nil
		out.NextProtos = []string{"h2"}
		if slices.Contains(hello.SupportedProtos, "http/1.1") {
			out.NextProtos = []string{"http/1.1"}
		}
		return out
	}
	inner := cfg.GetConfigForClient
	h1, h2 := cfg.Clone(), cfg.Clone()
	h1.GetConfigForClient, h1.NextProtos = nil, []string{"http/1.1"}
	h2.GetConfigForClient, h2.NextProtos = nil, []string{"h2"}
	c := cfg.Clone()
	c.NextProtos = []string{"h2", "http/1.1"}
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if inner != nil {
			// A configuration of the caller's for this client: offer the
			// protocols on a copy of it.
			own, err := inner(hello)
			if err != nil || own != nil {
				if own != nil {
					own = protos(own, hello)
				}
				return own, err
			}
		}
		if slices.Contains(hello.SupportedProtos, "http/1.1") {
			return h1, nil
		}
		return h2, nil
	}
	return c
}
