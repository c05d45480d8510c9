package server

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/cairndb/cairn/server/auth"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/server/webui"
)

// HTTPHandler serves /metrics (Prometheus) and /health: 200 when the Store
// can serve reads and writes, 503 with the reason otherwise; with
// [Options.Pprof], Go's profiles under /debug/pprof/ to loopback clients.
func (s *Server) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.store.Health(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("unhealthy: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.opts.Pprof {
		mux.Handle("/debug/pprof/", pprofHandler())
	}
	return mux
}

// HTTPServer returns an http.Server for [Server.HTTPHandler] with bounds on
// what a client may make it hold: request headers of at most
// [Options.MaxHeaderBytes] (net/http's default is 1 MiB), read within 10
// seconds.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.HTTPHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    s.opts.MaxHeaderBytes,
	}
}

// NodeHTTPHandler serves KurrentDB's HTTP API on the gRPC port (see
// [Server.Serve]): /ping, /info, /health/live and /gossip to anyone, as
// KurrentDB does; /stats and the AtomPub append ([Options.AtomPub]) behind
// the same authentication as the gRPC calls: basic-auth credentials of the
// user database, required over TLS or not. A refused request gets 401 with
// a basic-auth challenge. Under /ui/ it serves the admin web UI (package
// webui, unless [Options.DisableWebUI]), which authenticates the same
// users with basic credentials or a login form and its session; / leads
// there.
func (s *Server) NodeHTTPHandler() http.Handler {
	public := map[string]bool{}
	for _, p := range kurrentdbsvc.PublicHTTPPaths() {
		public[p] = true
	}
	h := s.kurrent.HTTPHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public[r.URL.Path] {
			h.ServeHTTP(w, r)
			return
		}
		if s.webUI != nil {
			// The UI authenticates its requests itself: a browser logs in
			// with a form, and keeps a session.
			if isWebUI(r.URL.Path) {
				s.webUI.ServeHTTP(w, r)
				return
			}
			if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
				http.Redirect(w, r, webui.Path, http.StatusFound)
				return
			}
		}
		header := r.Header.Get("Authorization")
		refuse := func(user, why string) {
			s.metrics.authFailures.Inc()
			s.authLog.failed(httpHost(r), user, r.Method+" "+r.URL.Path, why)
			w.Header().Set("WWW-Authenticate", `Basic realm="ES"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
		}
		if header == "" {
			refuse("", "no credentials")
			return
		}
		user, password, ok := parseBasic(header)
		if !ok {
			refuse("", "malformed credentials")
			return
		}
		p, err := s.users.Authenticate(r.Context(), user, password)
		switch {
		case errors.Is(err, users.ErrDisabled):
			refuse(user, "user disabled")
			return
		case errors.Is(err, users.ErrBadCredentials):
			refuse(user, "invalid credentials")
			return
		case err != nil:
			http.Error(w, "authentication: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), p)))
	})
}

// httpHost returns the address of an HTTP client without its port.
func httpHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
