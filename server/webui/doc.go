// Package webui is cairn's admin web UI: pages that a person reads in a
// browser, served by the server (package server) under /ui/ on the port of
// its KurrentDB API, as KurrentDB serves its own UI on its node port, so
// that the UI has the port's TLS and the server's users.
//
//   - a dashboard: the log's head position, appended events and read
//     requests per second as live charts, the store's size on disk, the
//     engine's health, and on a node of a cluster (cairn.Cluster) the
//     cluster's nodes, alive or down;
//   - a stream browser: the streams with a search, a stream or $all read
//     forwards and backwards a page at a time (links resolved, the standard
//     projections' streams such as $ce-order included), an event with its
//     data and metadata pretty-printed;
//   - a live tail of $all, filtered by stream and type prefix, as
//     server-sent events;
//   - persistent subscriptions: their statistics and consumers, the parked
//     events, their replay;
//   - projections: status, state and result; enable, disable, abort, reset;
//   - scavenge: start, stop, and how long it has run and what it freed.
//
// The pages are rendered on the server (html/template) with a little
// JavaScript for the live parts (the charts are drawn as SVG by the page's
// script); the templates, the script and the style sheet are embedded in
// the binary. Nothing is loaded from elsewhere: the UI works without the
// internet, and its Content-Security-Policy allows only its own files.
//
// # Authentication
//
// Every request but the login form and the static files authenticates,
// against the server's users ([Host.Users]): with basic credentials (for
// curl and scripts), or with the cookie of a session that the login form
// started. A session lives in the server's memory for 30 minutes after its
// last request, 12 hours at most ([Options]); each request looks its user
// up again, so a user disabled or deleted is logged out at once, and a
// session ends when its user's credentials change after the login (a
// password changed or reset, groups updated, the user disabled or deleted,
// here or on another server sharing the store: the password notifications
// that [users.DB.Watch] follows). The
// cookie is HttpOnly, SameSite=Strict, for /ui/ only, and Secure when the
// server speaks TLS; forms are refused when the browser says another site
// sent them (net/http's CrossOriginProtection). A page request without
// credentials is sent to the login form; a script's request gets 401.
//
// # Authorization
//
// The UI asks what the server's protocols ask: reading a stream takes the
// right to read it (its $acl, [Host.Access]); listing the streams and the
// live tail take the right to read $all, as cairn.v1's ListStreams and a
// subscription to $all do. Any user may see the dashboard and the
// statistics of persistent subscriptions, projections and scavenges;
// seeing and replaying parked events, managing projections and starting or
// stopping a scavenge take an administrator or an operator, as in
// KurrentDB.
//
// # Layers
//
// The UI takes what it needs of the server in a [Host], as the protocol
// services do: the Store, the user database, the ACL checker, the
// subscription and projection managers, the server's scavenges and a
// count of read requests. It never imports the server.
package webui
