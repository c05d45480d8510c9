package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
)

// Profiling
//
// With [Options.Pprof] the HTTP port serves Go's profiles (net/http/pprof)
// under /debug/pprof/, to clients on loopback only, whatever address the
// port listens on. Not behind authentication: that port speaks no TLS, so
// credentials would cross the network in the clear. And not to the
// network at all, because a profile shows what a password does not
// protect: the command line (a password given as a flag), the code's
// paths and the heap's layout, and a CPU profile or an execution trace
// costs the server while it runs. Someone on the machine, or at the end of
// an SSH tunnel to it, reads them. A reverse proxy on the same machine
// would expose them: do not forward /debug/ through one.

// pprofHandler serves the profiles to loopback clients and refuses the
// others with 403.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// CheckPprof returns an error when profiles cannot be served as asked: the
// HTTP port must be on, and listen on loopback (see Options.Pprof).
func CheckPprof(httpAddr string) error {
	if httpAddr == "" {
		return fmt.Errorf("--pprof serves profiles on the HTTP port: give --http-listen an address on loopback")
	}
	if !IsLoopback(httpAddr) {
		return fmt.Errorf("--pprof serves profiles to loopback clients only, and --http-listen %s reaches beyond: keep it on loopback (127.0.0.1:2114) and reach it through an SSH tunnel", httpAddr)
	}
	return nil
}
