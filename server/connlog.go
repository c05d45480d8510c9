package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connections and protocol mismatches
//
// A client that speaks the wrong protocol to the port fails in ways that
// its own error rarely explains: a TLS client on a plaintext port, a
// plaintext client on a TLS port, a gRPC request over HTTP/1.1 (a proxy
// that cannot forward HTTP/2). The server recognises each, refuses the
// connection or request, and logs once per client address and kind, at
// warning level, what to change; the cairn_protocol_mismatches_total
// metric counts every one. At debug level it logs each connection as it
// is routed and as it closes, and each request.

// The kinds of protocol mismatch, the values of the metric's label.
const (
	mismatchTLSOnPlaintext = "tls_on_plaintext"
	mismatchPlaintextOnTLS = "plaintext_on_tls"
	mismatchNoALPN         = "no_common_alpn"
	mismatchGRPCOverHTTP1  = "grpc_over_http1"
)

var mismatchAdvice = map[string]string{
	mismatchTLSOnPlaintext: "a client began a TLS handshake on this plaintext port: connect without TLS (kurrentdb://…?tls=false), or serve TLS (--tls-cert and --tls-key)",
	mismatchPlaintextOnTLS: "a client spoke plaintext on this TLS port: connect with TLS (kurrentdb://…?tls=true&tlsCAFile=…)",
	mismatchNoALPN:         "a client's TLS handshake offered no protocol the port serves: gRPC needs ALPN h2, KurrentDB's HTTP API http/1.1",
	mismatchGRPCOverHTTP1:  "a gRPC request arrived over HTTP/1.1: gRPC needs HTTP/2; a proxy in between must forward HTTP/2 to this port (h2c, or TLS with ALPN h2); gRPC-Web is not served",
}

// peerLogMax bounds the client addresses a peerLog remembers; when it is
// full it forgets them all, and logs each anew.
const peerLogMax = 4096

// peerLog logs each protocol mismatch once per client address and kind.
type peerLog struct {
	log   *slog.Logger
	count *prometheus.CounterVec

	mu   sync.Mutex
	seen map[[2]string]bool
}

func newPeerLog(log *slog.Logger, count *prometheus.CounterVec) *peerLog {
	return &peerLog{log: log, count: count, seen: map[[2]string]bool{}}
}

// mismatch counts a mismatch of kind from addr, and logs it the first
// time the address shows it.
func (p *peerLog) mismatch(kind string, addr net.Addr, attrs ...any) {
	p.count.WithLabelValues(kind).Inc()
	host := hostOf(addr)
	p.mu.Lock()
	key := [2]string{host, kind}
	first := !p.seen[key]
	if first {
		if len(p.seen) >= peerLogMax {
			clear(p.seen)
		}
		p.seen[key] = true
	}
	p.mu.Unlock()
	if first {
		p.log.Warn(mismatchAdvice[kind], append([]any{"peer", host, "kind", kind, "repeats", "logged once per peer"}, attrs...)...)
	}
}

func hostOf(addr net.Addr) string {
	if addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// tlsRecordStart reports whether b starts a TLS handshake record: the
// content type 22 and a protocol major version of 3.
func tlsRecordStart(b []byte) bool {
	return len(b) >= 2 && b[0] == 0x16 && b[1] == 0x03
}

// handshakeMismatch names the mismatch a failed TLS handshake shows, and
// false when it shows none (a network error, a bad certificate, a scanner).
func handshakeMismatch(err error) (string, *tls.RecordHeaderError, bool) {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		return mismatchPlaintextOnTLS, &rh, true
	}
	if strings.Contains(err.Error(), "unsupported application protocols") {
		return mismatchNoALPN, nil, true
	}
	return "", nil, false
}

// httpMethods start an HTTP/1 request.
var httpMethods = [][]byte{[]byte("GET "), []byte("POST "), []byte("PUT "), []byte("HEAD "), []byte("DELETE "), []byte("OPTIONS "), []byte("PATCH ")}

// answerPlaintext tells a plaintext HTTP/1 client on the TLS port what is
// wrong, as net/http does; other clients get nothing they could read.
func answerPlaintext(rh *tls.RecordHeaderError) {
	head := rh.RecordHeader[:]
	for _, m := range httpMethods {
		if bytes.HasPrefix(m, head) || bytes.HasPrefix(head, m) {
			_ = rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = rh.Conn.Write([]byte("HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nThis port speaks TLS: use https://, or tls=true in a connection string.\n"))
			return
		}
	}
}

// loggedConn logs at debug level when a routed gRPC connection closes.
type loggedConn struct {
	net.Conn
	log    *slog.Logger
	proto  string
	opened time.Time
	once   sync.Once
}

func (c *loggedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.log.Debug("connection closed", "peer", c.RemoteAddr().String(), "protocol", c.proto, "open", time.Since(c.opened).Round(time.Millisecond).String())
	})
	return err
}

// logHTTPConn logs at debug level when an HTTP connection of the port
// closes; it is the HTTP server's ConnState.
func logHTTPConn(log *slog.Logger) func(net.Conn, http.ConnState) {
	return func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed && log.Enabled(context.Background(), slog.LevelDebug) {
			log.Debug("connection closed", "peer", c.RemoteAddr().String(), "protocol", "http/1")
		}
	}
}

// guardNodeHTTP wraps the HTTP handler of the gRPC port: it refuses gRPC
// requests that arrive over HTTP/1 (see peerLog), and logs each request
// at debug level.
func (s *Server) guardNodeHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.peers.mismatch(mismatchGRPCOverHTTP1, remoteAddr(r.RemoteAddr), "path", r.URL.Path)
			http.Error(w, "gRPC needs HTTP/2: this request came over "+r.Proto, http.StatusHTTPVersionNotSupported)
			return
		}
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.Debug("http request", "peer", r.RemoteAddr, "method", r.Method, "path", r.URL.Path,
			"status", sw.code, "duration", time.Since(start).String())
	})
}

// remoteAddr is an http.Request's RemoteAddr as a net.Addr.
type remoteAddr string

func (a remoteAddr) Network() string { return "tcp" }
func (a remoteAddr) String() string  { return string(a) }

// statusWriter records the status a handler writes.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
