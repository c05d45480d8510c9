package server

import (
	"fmt"
	"net"
)

// IsLoopback reports whether addr (host:port) listens on loopback only:
// localhost or a loopback IP. An empty host (all interfaces) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckExposure returns an error when listening on addr as configured would
// expose the store: beyond loopback, the server needs TLS (without it the
// official Go client sends no credentials, and the others send theirs in
// the clear). On loopback plaintext is allowed, for development; either
// way every request must authenticate. The built-in users' passwords are
// checked once the store is open: [Server.CheckDefaultPasswords].
func CheckExposure(addr string, tls bool) error {
	if IsLoopback(addr) || tls {
		return nil
	}
	return fmt.Errorf("refusing to serve plaintext on %s, beyond loopback: clients send no credentials, or send them in the clear, without TLS; give --tls-cert and --tls-key (cairn certs makes a development pair)", addr)
}

// CheckHTTPExposure returns an error when serving the HTTP port (/metrics
// and /health) on addr would expose it beyond loopback and public, the
// operator's explicit consent, is not given: that port has neither TLS nor
// authentication, so whoever reaches it reads the server's metrics. An
// empty addr (no HTTP port) and loopback are always allowed.
func CheckHTTPExposure(addr string, public bool) error {
	if addr == "" || public || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("refusing to serve /metrics and /health on %s, beyond loopback: they have neither TLS nor authentication; keep --http-listen on loopback, or give --http-public to serve them to anyone who reaches the port", addr)
}
