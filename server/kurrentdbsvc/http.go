package kurrentdbsvc

import (
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"
)

// The HTTP API of a KurrentDB node, which it serves on the port of its
// gRPC API: /ping, /info, /health/live and /gossip, which anyone may call
// (container health checks, clients discovering the node), /stats, and,
// when [Options.AtomPub] is set, the AtomPub append of events
// (atompub.go). The host tells HTTP/1.1 from gRPC on the port, and
// authenticates the calls outside [PublicHTTPPaths].

// PublicHTTPPaths returns the HTTP paths served without credentials, as
// KurrentDB serves them.
func PublicHTTPPaths() []string { return []string{"/ping", "/info", "/health/live", "/gossip"} }

// HTTPHandler returns the handler of the node's HTTP API. It reads no
// credentials: the host authenticates a request before it calls the
// handler.
func (s *Services) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", s.ping)
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("GET /health/live", s.live)
	mux.HandleFunc("HEAD /health/live", s.live)
	mux.HandleFunc("GET /gossip", s.gossipJSON)
	mux.HandleFunc("GET /stats", s.stats)
	if s.opts.AtomPub {
		mux.HandleFunc("POST /streams/{stream}", s.atomAppend)
	}
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b) // the client went away: nobody to tell
}

// ping answers as KurrentDB does: its text message, as JSON or, for a
// client that asks for it, plain text.
func (s *Services) ping(w http.ResponseWriter, r *http.Request) {
	const text = "Ping request successfully handled"
	if prefersText(r) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(text))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"text": text})
}

// prefersText reports whether the request accepts plain text and not JSON.
func prefersText(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "text/plain") && !strings.Contains(a, "json")
}

// authenticationType is what /info says of authentication: "internal"
// (its users) when the host authenticates every call, "insecure", as
// KurrentDB's insecure mode, when it does not.
func (s *Services) authenticationType() string {
	if s.opts.Secure {
		return "internal"
	}
	return "insecure"
}

// info answers as KurrentDB's /info: its version, its state (a single node
// is the leader), its features (those this host serves) and its
// authentication.
func (s *Services) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"dbVersion": Version,
		"esVersion": Version,
		"state":     "leader",
		"features": map[string]bool{
			"projections":             s.projs != nil,
			"userManagement":          s.users != nil,
			"atomPub":                 s.opts.AtomPub,
			"persistentSubscriptions": s.groups != nil,
		},
		"authentication": map[string]any{
			"type":       s.authenticationType(),
			"properties": map[string]any{},
		},
	})
}

// live answers the liveness probe: 204 No Content while the Store serves.
func (s *Services) live(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Health(r.Context()); err != nil {
		http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// gossipJSON describes the cluster as KurrentDB's /gossip: its members
// (see gossipService) and the address that answered.
func (s *Services) gossipJSON(w http.ResponseWriter, r *http.Request) {
	ms, err := s.members(r.Context())
	if err != nil {
		http.Error(w, "the cluster's members: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	host, port := splitEndPoint(s.advertised())
	head, _ := s.head(r.Context())
	var members []map[string]any
	for _, m := range ms {
		state := "Follower"
		if m.leader {
			state = "Leader"
		}
		members = append(members, map[string]any{
			"instanceId":         m.id.String(),
			"timeStamp":          time.Now().UTC().Format(time.RFC3339Nano),
			"state":              state,
			"isAlive":            m.alive,
			"httpEndPointIp":     m.host,
			"httpEndPointPort":   m.port,
			"lastCommitPosition": head,
			"writerCheckpoint":   head,
			"chaserCheckpoint":   head,
			"nodePriority":       0,
			"isReadOnlyReplica":  false,
			"esVersion":          Version,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"members":    members,
		"serverIp":   host,
		"serverPort": port,
	})
}

// stats answers as KurrentDB's /stats, with the figures cairn has: the
// process (proc), the machine (sys) and the store (es).
func (s *Services) stats(w http.ResponseWriter, r *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	head, ok := s.head(r.Context())
	writer := int64(-1)
	if ok {
		writer = int64(head)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"proc": map[string]any{
			"startTime":    s.started.UTC().Format(time.RFC3339Nano),
			"id":           os.Getpid(),
			"mem":          m.Sys,
			"threadsCount": runtime.NumGoroutine(),
			"gc": map[string]any{
				"allocationSpeed":   0,
				"gcCount":           m.NumGC,
				"totalBytesInHeaps": m.HeapAlloc,
			},
		},
		"sys": map[string]any{
			"cpuCount": runtime.NumCPU(),
		},
		"es": map[string]any{
			"writer":        map[string]any{"lastPosition": writer},
			"uptimeSeconds": int64(time.Since(s.started).Seconds()),
		},
	})
}
