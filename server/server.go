package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/api/umadbv1/umadbsvc"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/projections"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/cairndb/cairn/server/tracing"
	"github.com/cairndb/cairn/server/users"
	"github.com/cairndb/cairn/subscription"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// DefaultAdminPassword is the password of the built-in admin user when none
// is configured, as in KurrentDB. The cairn command refuses to listen
// beyond loopback while admin has it ([Server.CheckDefaultPasswords]).
const DefaultAdminPassword = "changeit"

// DefaultOpsPassword is the password of the built-in ops user when none is
// configured, as in KurrentDB.
const DefaultOpsPassword = "changeit"

// DefaultMaxHeaderBytes is the default of [Options.MaxHeaderBytes]: 16 KiB,
// twice the 8 KiB that gRPC's C++ and Java servers accept by default and
// half what KurrentDB (ASP.NET Kestrel) accepts; gRPC-Go's own default is
// 16 MiB.
const DefaultMaxHeaderBytes = 16 << 10

// DefaultStreamWorkers is the default of [Options.StreamWorkers].
const DefaultStreamWorkers = 256

// The flow-control windows the server grants its clients: what a client may
// send on one RPC, and on one connection, before the server reads it.
// Fixed, as KurrentDB's server (ASP.NET Kestrel, 768 KiB and 1 MiB) keeps
// them; gRPC-Go's default, a window of 64 KiB that it grows by measuring
// each connection with pings, costs a ping and its answer on many appends.
const (
	streamWindow = 1 << 20
	connWindow   = 4 << 20
)

// DefaultMaxStreams is the default of [Options.MaxStreamsPerConnection],
// the HTTP/2 default of KurrentDB's server.
const DefaultMaxStreams = 100

// Options configure a [Server]. The zero value serves plaintext gRPC, to
// the users kept in the store: on a new store, admin and ops with the
// password "changeit".
type Options struct {
	// Logger receives the server's diagnostics. Nil discards them.
	Logger *slog.Logger
	// TLS, when set, serves gRPC over TLS. Nil serves plaintext. Either
	// way every request (except discovery: server features and gossip)
	// must authenticate; see the package documentation.
	TLS *tls.Config
	// ClientCAs, with TLS, asks each client for a certificate, and
	// authenticates a request that brings none of basic authentication's
	// credentials as the user its certificate's common name names, when
	// the certificate is signed by one of these authorities. A client may
	// present none; one that presents a certificate they did not sign is
	// refused at the handshake. Nil asks for no certificate.
	ClientCAs *x509.CertPool
	// AdminPassword is the password of the built-in admin user (in
	// $admins), which the server creates when the store has never held
	// it: on its first start. Later starts keep admin as the store has it.
	// Empty means DefaultAdminPassword.
	AdminPassword string
	// OpsPassword is the password of the built-in ops user (in $ops),
	// created as admin is. Empty means DefaultOpsPassword.
	OpsPassword string
	// Users configure the user database: the cost of password hashes and
	// how long a verified password is trusted (package users). Its
	// Logger defaults to the server's.
	Users users.Options
	// Metrics records the server's Prometheus metrics. Nil creates a fresh
	// set, available from [Server.Metrics]. Pass the same Metrics' Hooks in
	// the Store's options to count appended events and bytes.
	Metrics *Metrics
	// Advertise is the host:port the gossip service tells clients to
	// connect to. Empty means the address of the listener, with the host
	// name in place of an unspecified address (0.0.0.0 or ::).
	Advertise string
	// MaxAppendBytes bounds one append, which the server holds in memory
	// until it commits: the encoded size of all its events (for a
	// multi-stream append, all its streams) plus
	// [kurrentdbsvc.AppendEventOverhead] for each. An append past it is
	// refused with the protocol's maximum-append-size error and nothing of
	// it is written. Zero means the Store's largest event plus 1 MiB
	// ([cairnsvc.MessageLimit]), so that every event the Store accepts can
	// be appended; KurrentDB's own default is 16 MiB.
	MaxAppendBytes int
	// MaxStreamsPerConnection bounds the RPCs (reads, appends,
	// subscriptions) one connection runs at once; the client queues the
	// others. Zero means DefaultMaxStreams.
	MaxStreamsPerConnection int
	// StreamWorkers is how many goroutines the server keeps to run RPCs
	// on. An RPC that finds them all busy runs on a goroutine of its own.
	// A kept goroutine has grown its stack to the depth of an append, which
	// a new one grows (copying it) on every RPC. Zero means
	// DefaultStreamWorkers; negative keeps none.
	StreamWorkers int
	// ShutdownTimeout bounds how long [Server.Shutdown] waits for in-flight
	// requests when its context has no deadline. Zero means 10 seconds.
	ShutdownTimeout time.Duration
	// AuthFailureLogInterval bounds the log lines of failed
	// authentications: per client address and user name, the first
	// failure is logged at once, and those that follow within the interval
	// in one line with their count when it ends. Zero means
	// DefaultAuthFailureLogInterval. Every failure is counted in the
	// cairn_auth_failures_total metric.
	AuthFailureLogInterval time.Duration
	// Projections configure the projections the server runs (budgets,
	// checkpoints); the zero value is ready to use.
	Projections projections.Options
	// SystemEvents makes New write into a store that holds no event the
	// system events a new KurrentDB node starts with ($settings, its
	// default ACLs), which some tools read; a store that holds events is
	// left as it is. cairn serve sets it.
	SystemEvents bool
	// AtomPub serves KurrentDB's AtomPub append of events over HTTP (POST
	// /streams/{stream}, authenticated) on the gRPC port. Off by default,
	// as in KurrentDB 25.
	AtomPub bool
	// MaxHeaderBytes bounds the headers (metadata) of a request, which the
	// server reads before it authenticates the request; a request with
	// more is refused. It counts as HTTP/2 does: each field's name and
	// value plus 32 bytes. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Tracing, when set, traces the server with OpenTelemetry: a span for
	// each gRPC call and for each delivery to a subscriber of an event that
	// carries its writer's trace context (see package tracing). Put the
	// same Tracer's Hooks in the Store's options for the spans of its
	// appends and reads. Nil traces nothing, at no cost.
	Tracing *tracing.Tracer
	// Pprof serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// [Server.HTTPHandler], to clients on loopback only (see pprof.go for
	// why not behind authentication); others get 403. Off by default.
	Pprof bool
	// Backup streams a backup of the store's engine for cairn.v1's Backup
	// call (which takes an administrator or an operator); nil answers it
	// UNIMPLEMENTED. The cairn command sets it for the embedded engine.
	Backup cairnsvc.BackupFunc
	// UmaDBStream is the stream the umadb.v1 service appends UmaDB's
	// events to. Empty means umadbsvc.DefaultStream ("umadb").
	UmaDBStream string
	// DisableWebUI turns off the admin web UI (package webui), which the
	// gRPC port otherwise serves under /ui/ over HTTP/1.1.
	DisableWebUI bool
}

// Server serves a [cairn.Store] over the KurrentDB gRPC protocol (package
// kurrentdbsvc), and cairn's own cairn.v1 service (package cairnsvc) on the
// same port, behind the same authentication.
//
// A Server is safe for concurrent use. Each RPC runs on its own goroutine
// (gRPC's model); appends go straight to the Store, which serialises them as
// its engine does. Subscriptions read the Store directly and wait on
// [cairn.Store.Changes] when caught up, so they never buffer events: a slow
// subscriber holds back only its own goroutine, through gRPC flow control.
//
// [Server.Shutdown] ends subscriptions at once, lets in-flight appends and
// reads finish within its bound, then closes the connections. The Store is
// the caller's to close afterwards.
type Server struct {
	store   *cairn.Store
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	users   *users.DB
	access  *acl.Checker
	authLog *authLog
	// peers logs protocol mismatches once per client address.
	peers *peerLog
	grpc  *grpc.Server
	// anonymous are the RPCs served without credentials: discovery.
	anonymous map[string]bool
	// methods holds each RPC method's *methodMetrics.
	methods sync.Map

	// Locks: mu guards advertise and is a leaf: nothing else is locked
	// while it is held.
	mu        sync.Mutex
	advertise string

	// groups runs the persistent subscriptions; nil when the engine
	// cannot store them.
	groups *subscription.Manager

	// projections runs the projections; nil when the store cannot hold
	// them.
	projections *projections.Manager

	// kurrent serves the KurrentDB protocol; Shutdown waits for its
	// scavenges.
	kurrent *kurrentdbsvc.Services

	// standard keeps which of KurrentDB's standard projections are
	// enabled; nil when their state could not be read (all enabled).
	standard *links.Projections

	quit     chan struct{}
	quitOnce sync.Once

	// stopWatch ends the user database's watcher, and watched is closed
	// when it has ended.
	stopWatch context.CancelFunc
	watched   chan struct{}
	// nodeHTTPServer serves HTTP/1.1 on the gRPC port, from the queues
	// in nodeHTTP (guarded by mu).
	nodeHTTPServer *http.Server
	nodeHTTP       []*connQueue

	// state reports the store's state in the metrics until Shutdown.
	state *stateCollector
	// webUI serves the admin web UI on the HTTP side of the gRPC port;
	// nil when Options.DisableWebUI turns it off.
	webUI http.Handler
}

// New returns a Server for store. It creates the built-in users in the
// store if it has never held them (see [Options.AdminPassword]), and starts
// following the store's password notifications; [Server.Shutdown] stops
// that.
func New(ctx context.Context, store *cairn.Store, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	if opts.MaxAppendBytes <= 0 {
		opts.MaxAppendBytes = cairnsvc.MessageLimit(store)
	}
	if opts.MaxStreamsPerConnection <= 0 {
		opts.MaxStreamsPerConnection = DefaultMaxStreams
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.StreamWorkers == 0 {
		opts.StreamWorkers = DefaultStreamWorkers
	}
	if opts.AuthFailureLogInterval <= 0 {
		opts.AuthFailureLogInterval = DefaultAuthFailureLogInterval
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = DefaultAdminPassword
	}
	if opts.OpsPassword == "" {
		opts.OpsPassword = DefaultOpsPassword
	}
	if opts.Users.Logger == nil {
		opts.Users.Logger = opts.Logger
	}
	if opts.TLS != nil && opts.ClientCAs != nil {
		cfg := opts.TLS.Clone()
		cfg.ClientCAs = opts.ClientCAs
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		opts.TLS = cfg
	}
	if opts.SystemEvents {
		// Before the users: the settings go to a store that holds nothing.
		if err := kurrentdbsvc.Bootstrap(ctx, store); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	db := users.New(store, opts.Users)
	if err := db.Bootstrap(ctx, users.Builtin{AdminPassword: opts.AdminPassword, OpsPassword: opts.OpsPassword}); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		store:     store,
		opts:      opts,
		log:       opts.Logger,
		metrics:   opts.Metrics,
		users:     db,
		access:    acl.NewChecker(store),
		advertise: opts.Advertise,
		authLog:   newAuthLog(opts.Logger, opts.AuthFailureLogInterval),
		peers:     newPeerLog(opts.Logger, opts.Metrics.mismatches),
		quit:      make(chan struct{}),
	}
	s.anonymous = map[string]bool{}
	for _, m := range kurrentdbsvc.DiscoveryMethods() {
		s.anonymous[m] = true
	}
	maxMsg := cairnsvc.MessageLimit(store)
	gopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.MaxSendMsgSize(maxMsg),
		// gRPC-Go would read 16 MiB of headers before authentication.
		grpc.MaxHeaderListSize(uint32(min(opts.MaxHeaderBytes, math.MaxUint32))),
		grpc.MaxConcurrentStreams(uint32(opts.MaxStreamsPerConnection)),
		// The official clients ping every 10 s, also when idle.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		// Each calls the next itself: observe, authenticate, and for
		// streams, end a watch on shutdown.
		grpc.UnaryInterceptor(s.observeUnary),
		grpc.StreamInterceptor(s.observeStream),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		// Protobuf, but the appends' messages (v1 Append, BatchAppend)
		// and their success answers are coded by hand, without
		// reflection.
		grpc.ForceServerCodecV2(kurrentdbsvc.Codec()),
		// gRPC-Go returns a connection's write buffer to a pool after
		// each flush (its default): idle connections hold none.
	}
	if opts.StreamWorkers > 0 {
		gopts = append(gopts, grpc.NumStreamWorkers(uint32(opts.StreamWorkers)))
	}
	if opts.Tracing != nil {
		gopts = append(gopts, grpc.StatsHandler(opts.Tracing.ServerHandler()))
	}
	if opts.TLS != nil {
		// Serve terminates TLS itself, to tell gRPC from HTTP by ALPN.
		gopts = append(gopts, grpc.Creds(routedTLS{}))
	}
	s.grpc = grpc.NewServer(gopts...)
	s.standard = s.openStandardProjections()
	groupLinks := links.NewReader(store, links.Options{Projections: s.standard, Visible: kurrentdbsvc.Visibility(store)})
	if m, err := subscription.NewManager(store, subscription.ManagerOptions{Logger: opts.Logger, Links: groupLinks}); err == nil {
		s.groups = m
	} else {
		s.log.Info("persistent subscriptions are off", "reason", err)
	}
	s.startProjections()
	s.state = newStateCollector(s)
	if err := s.metrics.reg.Register(s.state); err != nil {
		// The Metrics serve another Server already: they report its state.
		s.log.Warn("the store's state is not in the metrics", "reason", err)
	}
	var deliveries kurrentdbsvc.Deliveries
	if opts.Tracing != nil {
		deliveries = opts.Tracing
	}
	s.kurrent = kurrentdbsvc.New(kurrentdbsvc.Host{
		Store:         store,
		Logger:        opts.Logger,
		Metrics:       protocolMetrics{s.metrics},
		Subscriptions: s.groups,
		Projections:   s.projections,
		Done:          s.quit,
		Advertised:    s.advertised,
		Standard:      s.standard,
		Access:        s.access,
		Users:         s.users,
		Deliveries:    deliveries,
	}, kurrentdbsvc.Options{MaxAppendBytes: opts.MaxAppendBytes, AtomPub: opts.AtomPub, Secure: true})
	s.kurrent.Register(s.grpc)
	cairnsvc.Register(s.grpc, store, cairnsvc.Options{Access: s.access, Backup: opts.Backup})
	if err := umadbsvc.Register(s.grpc, store, umadbsvc.Options{Stream: opts.UmaDBStream, Done: s.quit, Access: s.access}); err != nil {
		s.log.Error("UmaDB's umadb.v1 service is off", "err", err)
	}
	if !opts.DisableWebUI {
		s.webUI = s.newWebUI()
	}
	s.nodeHTTPServer = &http.Server{
		Handler:           s.guardNodeHTTP(s.NodeHTTPHandler()),
		ConnState:         logHTTPConn(opts.Logger),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}

	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopWatch, s.watched = stop, make(chan struct{})
	go func() {
		defer close(s.watched)
		if err := s.users.Watch(wctx); err != nil {
			s.log.Error("following the password notifications stopped; credentials changed by other servers are dropped from the cache after its TTL", "err", err)
		}
	}()
	return s, nil
}

// Users returns the server's user database.
func (s *Server) Users() *users.DB { return s.users }

// CheckDefaultPasswords returns an error when listening on addr would
// expose the store to anyone who knows KurrentDB's defaults: beyond
// loopback, the built-in admin and ops users must not have the default
// password (a user that is disabled or deleted cannot log in, and passes).
// On loopback it checks nothing. It costs a password hash per built-in
// user.
func (s *Server) CheckDefaultPasswords(ctx context.Context, addr string) error {
	if IsLoopback(addr) {
		return nil
	}
	for _, u := range []struct{ name, password, flag string }{
		{"admin", DefaultAdminPassword, "--admin-password or CAIRN_ADMIN_PASSWORD"},
		{"ops", DefaultOpsPassword, "--ops-password or CAIRN_OPS_PASSWORD"},
	} {
		_, err := s.users.Authenticate(ctx, u.name, u.password)
		if err == nil {
			return fmt.Errorf("refusing to listen on %s, beyond loopback: the user %s has the default password %q; change it with the Users service (on loopback), or on a new store set %s", addr, u.name, u.password, u.flag)
		}
		if !errors.Is(err, users.ErrBadCredentials) && !errors.Is(err, users.ErrDisabled) {
			return fmt.Errorf("checking the password of %s: %w", u.name, err)
		}
	}
	return nil
}

// openStandardProjections reads which standard projections are disabled.
// A store that cannot say leaves them all enabled, and the log says why.
func (s *Server) openStandardProjections() *links.Projections {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := links.OpenProjections(ctx, s.store)
	if err != nil {
		s.log.Warn("the standard projections' state is unreadable: all are enabled, and cannot be disabled", "reason", err)
		return nil
	}
	return p
}

// StandardProjections returns the standard projections ($by_category,
// $by_event_type, $streams, $stream_by_category, $by_correlation_id) that
// the server's streams show, to enable, disable and reset them; nil when
// their state could not be read.
func (s *Server) StandardProjections() *links.Projections { return s.standard }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Serve accepts connections on lis until [Server.Shutdown] is called,
// after which it returns nil: gRPC, and on the same port HTTP/1.1 for
// KurrentDB's /ping, /info, /health/live, /gossip, /stats (and, with
// [Options.AtomPub], its AtomPub appends). Each connection is one or the
// other, told apart as it opens (see mux.go): under TLS by ALPN, else by
// HTTP/2's preface.
func (s *Server) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.advertise == "" {
		s.advertise = advertiseFor(lis.Addr())
	}
	r := &router{lis: lis, log: s.log, peers: s.peers}
	if s.opts.TLS != nil {
		r.tls = withALPN(s.opts.TLS)
	}
	closeLis := func() { lis.Close() }
	r.grpc = newConnQueue(lis.Addr(), closeLis)
	r.http = newConnQueue(lis.Addr(), closeLis)
	s.nodeHTTP = append(s.nodeHTTP, r.http)
	s.mu.Unlock()
	s.log.Info("serving the KurrentDB protocol", "addr", lis.Addr().String(), "tls", s.opts.TLS != nil)
	go r.run()
	go func() {
		if err := s.nodeHTTPServer.Serve(r.http); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.log.Warn("the HTTP side of the node's port stopped", "err", err)
		}
	}()
	err := s.grpc.Serve(r.grpc)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown stops the server: it refuses new RPCs, ends live subscriptions,
// and waits for in-flight RPCs (appends in particular) to finish until ctx
// is done, or ShutdownTimeout passes when ctx has no deadline. Then it
// closes every connection. It returns ctx's error if it had to cut RPCs
// short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.quitOnce.Do(func() { close(s.quit) })
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.ShutdownTimeout)
		defer cancel()
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		err = ctx.Err()
	}
	// The HTTP side of the port: its requests are short; cut what remains.
	if herr := s.nodeHTTPServer.Shutdown(ctx); herr != nil {
		s.nodeHTTPServer.Close()
	}
	s.mu.Lock()
	for _, q := range s.nodeHTTP {
		q.Close()
	}
	s.mu.Unlock()
	s.metrics.reg.Unregister(s.state)
	// No request runs any more: report the failed authentications still
	// being counted.
	s.authLog.close()
	s.stopWatch()
	<-s.watched
	// A scavenge was cancelled by quit; the store must outlive it.
	s.kurrent.Wait()
	if perr := s.stopProjections(ctx); perr != nil && err == nil {
		err = perr
	}
	if s.groups != nil {
		// Write the groups' checkpoints, now that no consumer runs.
		if cerr := s.groups.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// watchMethods are the RPCs that last until the client leaves; Shutdown
// ends them at once rather than waiting for them. The KurrentDB
// subscriptions watch the shutdown themselves.
var watchMethods = map[string]bool{
	cairnv1.Cairn_Watch_FullMethodName: true,
}

func (s *Server) endOnShutdown(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !watchMethods[info.FullMethod] {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
}

// advertiseFor returns the address to advertise for a listener: its own,
// or the host name with its port when it listens on every interface.
func advertiseFor(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			return net.JoinHostPort(name, port)
		}
	}
	return addr.String()
}

func (s *Server) advertised() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advertise
}
