package kurrentdbsvc

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/buildinfo"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"github.com/cairndb/cairn/server/kurrentdbsvc/userspb"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/subscription"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/gossip"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	projpb "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/projections"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	apiv2 "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v2/streams/streams"
	"google.golang.org/grpc"
)

// Version is the server version reported to clients: the KurrentDB
// protocol version, then cairn's own (the one `cairn version` prints).
var Version = buildinfo.Advertised()

// Host is what the services need from the server that hosts them: the
// server listens, authenticates each request (see package auth for the
// principal it puts in the request's context), counts and shuts down; the
// services answer the protocol's calls. Only Store is required.
type Host struct {
	// Store is the store the services serve.
	Store *cairn.Store
	// Logger receives the services' diagnostics. Nil discards them.
	Logger *slog.Logger
	// Metrics receives what the services count. Nil counts nothing.
	Metrics Metrics
	// Subscriptions runs the persistent subscriptions. Nil serves none:
	// the persistent subscriptions service is not registered and the
	// server features do not list it.
	Subscriptions *subscription.Manager
	// Projections runs the projections. Nil serves none: the projections
	// service is not registered and the server features do not list it.
	Projections *projections.Manager
	// Done is closed when the server shuts down: live subscriptions end
	// and a running scavenge is cancelled. Nil never closes.
	Done <-chan struct{}
	// Advertised returns the host:port the gossip service tells clients
	// to connect to. Nil advertises nothing.
	Advertised func() string
	// Standard says which of KurrentDB's standard projections are
	// enabled; their streams ($ce-, $et-, …) are read from the Store's
	// index. Nil enables all of them.
	Standard *links.Projections
	// Access decides each request against the stream ACLs, for the
	// principal the host put in the request's context (package auth).
	// Nil lets every request do anything: the host has nothing to
	// protect, or protects it itself.
	Access *acl.Checker
	// Users is the user database that the Users service manages. Nil
	// serves no Users service.
	Users *users.DB
	// Deliveries, when set, is told of each event that goes out to a
	// subscriber, catch-up or persistent, for tracing. Nil tells nothing.
	Deliveries Deliveries
}

// Deliveries observes the events sent to subscribers.
type Deliveries interface {
	// Deliver is called as e goes out to a subscriber of subscription (a
	// catch-up subscription's id, or "<stream>::<group>" for a persistent
	// one), with the subscription call's context; e is the event as
	// appended (a resolved link's target). The function it returns, unless
	// nil, is called with the error of the send.
	Deliver(ctx context.Context, subscription string, e *cairn.Event) func(error)
}

// Options configure the services.
type Options struct {
	// MaxAppendBytes bounds one append, which the services hold in memory
	// until it commits: the encoded size of all its events (for a
	// multi-stream append, all its streams) plus AppendEventOverhead for
	// each. An append past it is refused with the protocol's
	// maximum-append-size error and nothing of it is written. Zero means
	// the Store's largest event plus 1 MiB, the largest message the host
	// accepts, so that every event the Store accepts can be appended.
	MaxAppendBytes int
	// AtomPub serves KurrentDB's AtomPub append of events over HTTP (POST
	// /streams/{stream}) in [Services.HTTPHandler]. It is off by default,
	// as in KurrentDB 25.
	AtomPub bool
	// Secure says the host authenticates every call, as cairn serve
	// does over TLS or not; /info reports the authentication as
	// "internal" (its users) rather than "insecure".
	Secure bool
}

// Metrics receives what the services count; the host feeds its metrics
// with it. Its methods are called concurrently.
type Metrics interface {
	// Appends counts n appends that ended with result: "ok",
	// "wrong_expected_version" or "error". A multi-stream append counts
	// its streams.
	Appends(result string, n int)
	// AppendDuration records how long a single-stream append that
	// succeeded took to become durable.
	AppendDuration(time.Duration)
	// Subscriptions adds delta to the live subscriptions being served.
	Subscriptions(delta int)
	// SubscriptionEvents counts events sent to subscribers.
	SubscriptionEvents(n int)
}

// noMetrics counts nothing.
type noMetrics struct{}

func (noMetrics) Appends(string, int)          {}
func (noMetrics) AppendDuration(time.Duration) {}
func (noMetrics) Subscriptions(int)            {}
func (noMetrics) SubscriptionEvents(int)       {}

// Services are the KurrentDB services over one Store. They are safe for
// concurrent use: each RPC runs on its own goroutine (gRPC's model).
type Services struct {
	store      *cairn.Store
	opts       Options
	log        *slog.Logger
	metrics    Metrics
	groups     *subscription.Manager
	access     *acl.Checker
	users      *users.DB
	deliveries Deliveries
	projs      *projections.Manager
	quit       <-chan struct{}
	advertised func() string
	id         uuid.UUID
	started    time.Time

	// links reads streams as KurrentDB shows them: the standard
	// projections' streams from the index, links resolved on request,
	// stream metadata and the request's right to read enforced on link
	// targets.
	links *links.Reader

	// local wakes subscriptions after changes the Store does not signal:
	// deletes, tombstones and metadata appends.
	local broadcast

	// ops runs scavenges, which Wait waits for.
	ops *operationsService
}

// New returns the services of host.
func New(host Host, opts Options) *Services {
	if host.Logger == nil {
		host.Logger = slog.New(slog.DiscardHandler)
	}
	if host.Metrics == nil {
		host.Metrics = noMetrics{}
	}
	if host.Advertised == nil {
		host.Advertised = func() string { return "" }
	}
	if opts.MaxAppendBytes <= 0 {
		opts.MaxAppendBytes = host.Store.MaxEventBytes() + 1<<20
	}
	s := &Services{
		store:      host.Store,
		opts:       opts,
		log:        host.Logger,
		metrics:    host.Metrics,
		groups:     host.Subscriptions,
		access:     host.Access,
		users:      host.Users,
		deliveries: host.Deliveries,
		projs:      host.Projections,
		quit:       host.Done,
		advertised: host.Advertised,
		id:         uuid.New(),
		started:    time.Now(),
	}
	s.ops = &operationsService{s: s}
	s.links = links.NewReader(host.Store, links.Options{Projections: host.Standard, Visible: s.visibleOf, Readable: s.readable})
	return s
}

// Register registers the services on srv: Streams (v1), the v2
// multi-stream append, gossip, server features, the scavenge calls of
// Operations and, when the host runs them, persistent subscriptions,
// Users and projections.
// projections.
func (s *Services) Register(srv grpc.ServiceRegistrar) {
	api.RegisterStreamsServer(srv, &streamsService{s: s})
	apiv2.RegisterStreamsServiceServer(srv, &multiAppendService{s: s})
	gossip.RegisterGossipServer(srv, &gossipService{s: s})
	serverfeatures.RegisterServerFeaturesServer(srv, &featuresService{s: s})
	operationspb.RegisterOperationsServer(srv, s.ops)
	if s.groups != nil {
		ps.RegisterPersistentSubscriptionsServer(srv, &persistentService{s: s, m: s.groups})
	}
	if s.users != nil {
		userspb.RegisterUsersServer(srv, &usersService{s: s, db: s.users})
	}
	if s.projs != nil {
		projpb.RegisterProjectionsServer(srv, &projectionsService{s: s, m: s.projs})
	}
}

// Wait waits for the work the services run in the background, a scavenge,
// to end. Call it once Host.Done is closed, which cancels that work, and
// before closing the Store.
func (s *Services) Wait() { s.ops.wait() }

// observeAppend records an append's outcome and latency.
func (s *Services) observeAppend(start time.Time, result string) {
	s.metrics.Appends(result, 1)
	if result == "ok" {
		s.metrics.AppendDuration(time.Since(start))
	}
}

// broadcast wakes every waiter by closing a channel, as the Store's
// Changes does.
type broadcast struct {
	mu sync.Mutex // guards ch; a leaf
	ch chan struct{}
}

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
