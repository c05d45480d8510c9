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
// official clients send no credentials, so nothing can be authenticated) and
// an admin password other than DefaultAdminPassword. On loopback anything
// goes: plaintext is the development default.
func CheckExposure(addr string, tls bool, adminPassword string) error {
	if IsLoopback(addr) {
		return nil
	}
	if !tls {
		return fmt.Errorf("refusing to serve plaintext on %s, beyond loopback: clients send no credentials without TLS; give --tls-cert and --tls-key (cairn certs makes a development pair)", addr)
	}
	if adminPassword == DefaultAdminPassword {
		return fmt.Errorf("refusing to listen on %s, beyond loopback, with the default admin password: set --admin-password or CAIRN_ADMIN_PASSWORD", addr)
	}
	return nil
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
