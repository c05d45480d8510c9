package server

import (
	"net/http"
	"strings"

	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/cairndb/cairn/server/webui"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// newWebUI returns the admin web UI (package webui), which the node's HTTP
// side serves under webui.Path: the same users, ACLs, subscriptions,
// projections and scavenges as the gRPC services.
func (s *Server) newWebUI() *webui.UI {
	return webui.New(webui.Host{
		Store: s.store,
		Users: s.users,
		// The stream browser shows streams as the KurrentDB clients
		// read them: the standard projections' streams, stream metadata
		// enforced on links.
		Access:        s.access,
		Links:         links.NewReader(s.store, links.Options{Projections: s.standard, Visible: kurrentdbsvc.Visibility(s.store)}),
		Subscriptions: s.groups,
		Projections:   s.projections,
		Scavenges:     scavenges{s.kurrent},
		ReadRequests:  s.metrics.readRequests,
		AuthFailed: func(r *http.Request, user, reason string) {
			s.metrics.authFailures.Inc()
			s.authLog.failed(httpHost(r), user, "web UI "+r.Method+" "+r.URL.Path, reason)
		},
		Logger: s.log,
		Done:   s.quit,
	}, webui.Options{Secure: s.opts.TLS != nil})
}

// isWebUI reports whether an HTTP request is for the web UI.
func isWebUI(path string) bool {
	return strings.HasPrefix(path, webui.Path) || path == strings.TrimSuffix(webui.Path, "/")
}

// scavenges hands the UI the scavenges of the KurrentDB Operations
// service, so that both see the same one.
type scavenges struct{ k *kurrentdbsvc.Services }

func (sc scavenges) StartScavenge() (webui.Scavenge, bool) {
	s, started := sc.k.StartScavenge()
	return webui.Scavenge(s), started
}

func (sc scavenges) StopScavenge(id string) error { return sc.k.StopScavenge(id) }

func (sc scavenges) LastScavenge() (webui.Scavenge, bool) {
	s, ok := sc.k.LastScavenge()
	return webui.Scavenge(s), ok
}

// readRequests returns the read requests served so far: the gRPC calls
// whose method's name begins with Read (KurrentDB's Streams.Read, which
// also subscribes, and PersistentSubscriptions.Read; cairn.v1's
// ReadStream, ReadAll, ReadQuery, ReadIndex, ReadModel…; umadb.v1's Read),
// counted as they end.
func (m *Metrics) readRequests() uint64 {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.requests.Collect(ch)
		close(ch)
	}()
	var n float64
	for metric := range ch {
		var d dto.Metric
		if metric.Write(&d) != nil {
			continue
		}
		for _, l := range d.GetLabel() {
			if l.GetName() != "method" {
				continue
			}
			if _, method, _ := strings.Cut(l.GetValue(), "/"); strings.HasPrefix(method, "Read") {
				n += d.GetCounter().GetValue()
			}
		}
	}
	return uint64(n)
}
