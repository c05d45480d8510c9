// Package server is the host that serves a [cairn.Store] to the network: it
// listens, speaks TLS, authenticates every request, counts (Prometheus
// metrics), serves /metrics and /health over HTTP, and shuts down in order.
// The protocols it serves live in packages of their own, which it
// registers on one gRPC port behind the same authentication:
//
//   - the KurrentDB (EventStoreDB) protocol, so that the official KurrentDB
//     clients work against cairn unchanged: package kurrentdbsvc;
//   - cairn's own cairn.v1 service: package cairnsvc (beside its proto in
//     package cairnv1);
//   - UmaDB's umadb.v1 DCB service, so that UmaDB's clients work against
//     cairn unchanged: package umadbsvc (beside its proto in package
//     umadbv1), appending to one stream ([Options.UmaDBStream]).
//
// The same port answers KurrentDB's HTTP/1.1 calls (/ping, /info,
// /health/live, /gossip, /stats, and with [Options.AtomPub] the AtomPub
// append) and serves the admin web UI under /ui/ (package webui, behind the
// same users; [Options.DisableWebUI] turns it off): [Server.Serve] tells
// each connection's protocol as it opens, under TLS by ALPN ("h2" is gRPC,
// "http/1.1" HTTP, and a client that offers both, a browser, gets
// HTTP/1.1), else by HTTP/2's connection preface, and terminates TLS
// itself, handing gRPC the connection's TLS state.
//
// The dependency goes one way: the server imports the protocols, never the
// reverse. A protocol takes what it needs of the host in a small type of
// its own ([kurrentdbsvc.Host]: the Store, the logger, metrics, the
// subscription manager, the shutdown signal), and reads who makes a
// request from the request's context (package auth), where the server put
// the principal it authenticated.
//
// # Memory
//
// A message is at most the Store's largest event plus 1 MiB (17 MiB by
// default, [cairnsvc.MessageLimit]); each protocol bounds what one request
// holds in messages (see its package). A connection runs at most
// [Options.MaxStreamsPerConnection] (100) RPCs at once, so a connection
// holds at most that many times a request's bound. A client may send up to
// 1 MiB on an RPC and 4 MiB on a connection before the server reads it
// (fixed flow-control windows); connections return their write buffers to
// a pool when idle; [Options.StreamWorkers] goroutines are kept to run
// RPCs on.
//
// # Security
//
// Every request except discovery (server features and gossip) must
// authenticate, with TLS ([Options.TLS]) or without; a missing or wrong
// credential is refused with gRPC's Unauthenticated, which the clients
// report as ErrorCodeUnauthenticated. A request authenticates with basic
// credentials — a user of the user database that the server keeps in the
// Store (package users) — or, with TLS and [Options.ClientCAs], with a
// client certificate signed by one of those authorities, whose common name
// names an existing, enabled user, as KurrentDB's user certificates do;
// basic credentials win when a client sends both, and a certificate valid
// for server authentication is a node's, not a user's. The password never
// reaches a log. A verified password is trusted for the user database's
// cache TTL (30 s) without hashing it again, and a connection that sends
// the same header again is recognised without parsing it (users.Memo); a
// change of the user through the server is in force for the next request,
// and one through another server sharing the Store as soon as the Store
// signals its notification.
//
// There is no anonymous access: unlike KurrentDB, the server refuses a
// request without credentials even where an ACL grants $all, and even
// without TLS. The official Go client sends credentials only over TLS, so
// it needs TLS; cairn's own clients and the Node.js client send theirs over
// plaintext too. The cairn command serves TLS by default, with a
// development certificate ([GenerateCerts]) on loopback, and plaintext
// only on loopback, when told --insecure.
//
// [New] creates the built-in users admin ($admins) and ops ($ops) in a
// store that never held them, with [Options.AdminPassword] and
// [Options.OpsPassword]; later starts keep them as stored.
// [Server.CheckDefaultPasswords] refuses to expose a server whose admin or
// ops has the default password.
//
// Each protocol then decides the request against the stream ACLs (package
// acl), for the principal the server put in its context (package auth).
//
// A failed authentication is logged, but not once per attempt: per client
// address and user name, the first failure is logged at once and the
// others of the next [Options.AuthFailureLogInterval] (30 s) in one line
// with their count; the cairn_auth_failures_total metric counts each one.
// A request's headers, read before it is authenticated, are bounded by
// [Options.MaxHeaderBytes] (16 KiB); a larger request is refused.
//
// The HTTP port ([Server.HTTPHandler]: /metrics and /health) has neither TLS
// nor authentication. The cairn command serves it on loopback, and beyond
// loopback only with --http-public ([CheckHTTPExposure]). With
// [Options.Pprof] it also serves Go's profiles, to loopback clients only.
//
// # Observability
//
// [Metrics] count what the server serves and, read at each scrape, report
// the store's state: the head of the log, the engine's size on disk, each
// persistent subscription group's lag, in-flight and parked events, each
// projection's lag, and the build. With [Options.Tracing] (package
// tracing) each gRPC call is an OpenTelemetry span, and so are the Store's
// appends and reads it makes and each delivery to a subscriber of an event
// that carries its writer's trace context; without it nothing is
// instrumented. At debug level the logger gets a line per connection and
// per request. A client that speaks the wrong protocol to the port (TLS to
// a plaintext port, plaintext to a TLS one, a TLS handshake with no
// protocol in common, gRPC over HTTP/1.1) is refused, logged once per
// client address at warning level with what to change, and counted in
// cairn_protocol_mismatches_total.
package server
