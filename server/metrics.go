package server

import (
	"context"
	"log/slog"
	"net/http"
	"path"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Metrics are the server's Prometheus metrics, in a registry of their own
// (no global state). All methods are safe for concurrent use.
//
// Besides what the server counts as it serves (requests, appends, bytes,
// subscriptions, failed authentications) and cairn_build_info, the
// Server that uses them reports, read at each scrape, the store's state:
// cairn_head_position, cairn_disk_bytes, the engine's group commit
// (cairn_commit_writes_total, _groups_total, _syncs_total,
// _sync_seconds_total), and per persistent subscription
// group and per projection how far behind they are
// (cairn_persistent_subscription_lag_events, _in_flight_events,
// _parked_events, cairn_projection_lag_events).
type Metrics struct {
	reg *prometheus.Registry

	appends        *prometheus.CounterVec
	appendSeconds  prometheus.Histogram
	appendedEvents prometheus.Counter
	appendedBytes  prometheus.Counter
	storeErrors    *prometheus.CounterVec
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	subscriptions  prometheus.Gauge
	subEvents      prometheus.Counter
	authFailures   prometheus.Counter
	mismatches     *prometheus.CounterVec
}

// NewMetrics returns a fresh set of metrics, with the Go runtime and process
// collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_appends_total",
			Help: "Appends received over the network, by result (ok, wrong_expected_version, error).",
		}, []string{"result"}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_append_duration_seconds",
			Help:    "Time to make an append durable, as seen by the server.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		appendedEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_appended_events_total",
			Help: "Events appended to the store.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_appended_bytes_total",
			Help: "Data and metadata bytes of the events appended to the store.",
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_store_errors_total",
			Help: "Store operations that failed for a reason other than the caller's input, by operation.",
		}, []string{"op"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_grpc_requests_total",
			Help: "gRPC requests by method and status code.",
		}, []string{"method", "code"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_grpc_request_duration_seconds",
			Help:    "gRPC request latency by method, for calls that answer once.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"method"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_subscriptions_active",
			Help: "Live subscriptions being served.",
		}),
		subEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_subscription_events_total",
			Help: "Events sent to subscribers.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cairn_auth_failures_total",
			Help: "Requests refused for missing or invalid credentials.",
		}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_protocol_mismatches_total",
			Help: "Connections and requests refused for speaking the wrong protocol to the port, by kind (tls_on_plaintext, plaintext_on_tls, no_common_alpn, grpc_over_http1).",
		}, []string{"kind"}),
	}
	m.reg.MustRegister(m.mismatches, m.appends, m.appendSeconds, m.appendedEvents, m.appendedBytes, m.storeErrors,
		m.requests, m.requestSeconds, m.subscriptions, m.subEvents, m.authFailures, buildInfo(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Hooks returns the Store hooks that feed the appended-events, bytes and
// store-error metrics. Put them in [cairn.Options.Hooks] when opening the
// Store the server serves.
func (m *Metrics) Hooks() cairn.Hooks {
	return cairn.Hooks{
		Appended: func(_ string, events, bytes int) {
			m.appendedEvents.Add(float64(events))
			m.appendedBytes.Add(float64(bytes))
		},
		Failed: func(op string, _ error) { m.storeErrors.WithLabelValues(op).Inc() },
	}
}

// Registry returns the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observeUnary is the server's unary interceptor: it counts and times the
// call around authUnary. The interceptors call each other rather than
// being chained by gRPC, which allocates the chain's closures on every
// call.
func (s *Server) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := s.authUnary(ctx, req, info, handler)
	s.observe(ctx, info.FullMethod, start, err, true)
	return resp, err
}

// observeStream is the server's stream interceptor: it counts and times the
// call around authStream (see observeUnary).
func (s *Server) observeStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := s.authStream(srv, ss, info, handler)
	// A call that streams responses (a read, a subscription, a batch
	// append session) may last for hours: its duration says nothing about
	// latency. Client-streaming calls (appends) answer once, and are timed.
	s.observe(ss.Context(), info.FullMethod, start, err, !info.IsServerStream)
	return err
}

func (s *Server) observe(ctx context.Context, method string, start time.Time, err error, timed bool) {
	m := s.methodMetrics(method)
	code := status.Code(err)
	if code == codes.OK {
		m.okOnce.Do(func() { m.ok = s.metrics.requests.WithLabelValues(m.name, codes.OK.String()) })
		m.ok.Inc()
	} else {
		s.metrics.requests.WithLabelValues(m.name, code.String()).Inc()
	}
	if timed {
		m.secondsOnce.Do(func() { m.seconds = s.metrics.requestSeconds.WithLabelValues(m.name) })
		m.seconds.Observe(time.Since(start).Seconds())
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		peerAddr := ""
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			peerAddr = p.Addr.String()
		}
		s.log.Debug("grpc request", "peer", peerAddr, "method", m.name, "code", code.String(), "duration", time.Since(start).String())
	}
}

// methodMetrics are the metrics of one RPC method, looked up once rather
// than by their labels on every call. A series appears with its first
// observation, as it would by label.
type methodMetrics struct {
	name                string
	okOnce, secondsOnce sync.Once
	ok                  prometheus.Counter
	seconds             prometheus.Observer
}

// methodMetrics returns the metrics of method. The methods are those the
// server registered: gRPC refuses others before the interceptors.
func (s *Server) methodMetrics(method string) *methodMetrics {
	if m, ok := s.methods.Load(method); ok {
		return m.(*methodMetrics)
	}
	m, _ := s.methods.LoadOrStore(method, &methodMetrics{name: path.Base(path.Dir(method)) + "/" + path.Base(method)})
	return m.(*methodMetrics)
}

// protocolMetrics feeds m with what the protocol services count.
type protocolMetrics struct{ m *Metrics }

func (p protocolMetrics) Appends(result string, n int) {
	p.m.appends.WithLabelValues(result).Add(float64(n))
}

func (p protocolMetrics) AppendDuration(d time.Duration) { p.m.appendSeconds.Observe(d.Seconds()) }

func (p protocolMetrics) Subscriptions(delta int) { p.m.subscriptions.Add(float64(delta)) }

func (p protocolMetrics) SubscriptionEvents(n int) { p.m.subEvents.Add(float64(n)) }
