package server

import (
	"net/http"
	"time"
)

// HTTPHandler serves /metrics (Prometheus) and /health: 200 when the Store
// can serve reads and writes, 503 with the reason otherwise.
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
