// Package storeurl opens a [cairn.Store] from a URL, the way the cairn
// command and server name their engine:
//
//	memory:                  the in-memory engine (nothing is kept)
//	./cairn-data, /var/lib/x a directory: the embedded on-disk engine
//	file:///var/lib/x        the same, as a URL
//	postgres://… postgresql://… a PostgreSQL database
//	cairn://[user:password@]host:port[?tls=true&tlscafile=ca.crt]
//	                         a cairn server, through its cairn.v1 API
//	nats://h1:4222,h2:4222[?dir=./node1&stream=CAIRN&replicas=3]
//	                         a node of a cairn cluster replicated on NATS
//	                         JetStream (natsstore); its copy in dir
//
// An unknown scheme or a malformed URL is an error that says what was
// expected.
//
// The memory engine is built in. The others register themselves, the way
// database/sql drivers do, from a package of their own that a program
// imports for its side effect, so that a program links only the engines it
// names (importing storeurl alone brings in neither pgx nor gRPC nor pebble):
//
//	import (
//		_ "github.com/cairndb/cairn/storeurl/disk"     // directories, file://
//		_ "github.com/cairndb/cairn/storeurl/postgres" // postgres://
//		_ "github.com/cairndb/cairn/storeurl/remote"   // cairn://
//		_ "github.com/cairndb/cairn/storeurl/nats"     // nats://
//	)
//
// Opening a URL whose engine was not imported fails with [ErrNoEngine].
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// Options configure the opened Store and the engines.
type Options struct {
	// Store configures the facade.
	Store cairn.Options
	// NoSync opens the embedded engine without fsync. It is for tests and
	// benchmarks only: acknowledged appends can be lost in a crash.
	NoSync bool
	// NodeDir is the directory of a cluster node's copy (nats://), when
	// the URL has no dir parameter.
	NodeDir string
	// Advertise is the address (host:port) at which clients reach the
	// server of a cluster node (nats://), which gossip reports.
	Advertise string
}

// ErrNoEngine is returned by [Open] for a URL whose engine is not linked
// into the program: import its package under storeurl.
var ErrNoEngine = errors.New("engine not linked into this program")

// An Opener opens the engine of one kind of URL. target is what [Parse]
// returned for the URL: the directory for Dir, the URL itself otherwise.
// Its errors must not repeat a password the URL holds.
type Opener func(ctx context.Context, target string, opts Options) (cairn.Backend, error)

// openers holds the registered engines, by kind. Registration happens in
// init functions; lookups in Open, from any goroutine.
var openers = struct {
	sync.RWMutex
	m map[Kind]Opener
}{m: map[Kind]Opener{Memory: openMemory}}

func openMemory(context.Context, string, Options) (cairn.Backend, error) {
	return memstore.New(), nil
}

// Register makes [Open] open URLs of kind with open. It is called from the
// init function of an engine's package under storeurl. It panics when open
// is nil, kind is not one that Parse returns, or kind already has an
// engine, as database/sql's Register does: each is a mistake in the
// program, not in its input.
func Register(kind Kind, open Opener) {
	if open == nil {
		panic("storeurl: Register with a nil Opener")
	}
	if kind < Memory || kind > Nats {
		panic(fmt.Sprintf("storeurl: Register of unknown kind %d", int(kind)))
	}
	openers.Lock()
	defer openers.Unlock()
	if _, dup := openers.m[kind]; dup {
		panic(fmt.Sprintf("storeurl: Register called twice for the %s engine", kind))
	}
	openers.m[kind] = open
}

// Open opens the store named by raw.
func Open(ctx context.Context, raw string, opts Options) (*cairn.Store, error) {
	kind, target, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	openers.RLock()
	open := openers.m[kind]
	openers.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("store %q: %w: for a %s store, import _ %q", Redact(raw), ErrNoEngine, kind, kindPackage[kind])
	}
	b, err := open(ctx, target, opts)
	if err != nil {
		return nil, err
	}
	return cairn.NewStore(b, opts.Store), nil
}

// Kind is the kind of engine a URL names.
type Kind int

// The kinds of engine.
const (
	Memory Kind = iota + 1
	Dir
	Postgres
	Remote
	Nats
)

// kindPackage names the package that registers each kind's engine; the
// memory engine is built in.
var kindPackage = map[Kind]string{
	Dir:      "github.com/cairndb/cairn/storeurl/disk",
	Postgres: "github.com/cairndb/cairn/storeurl/postgres",
	Remote:   "github.com/cairndb/cairn/storeurl/remote",
	Nats:     "github.com/cairndb/cairn/storeurl/nats",
}

// String returns the kind's name: memory, directory, postgres or remote.
func (k Kind) String() string {
	switch k {
	case Memory:
		return "memory"
	case Dir:
		return "directory"
	case Postgres:
		return "postgres"
	case Remote:
		return "remote"
	case Nats:
		return "nats"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Parse returns the kind of engine raw names, and its target: the directory
// for Dir, the connection URL for Postgres.
func Parse(raw string) (Kind, string, error) {
	if raw == "" {
		return 0, "", fmt.Errorf("store: empty URL: use memory:, a directory path, or postgres://user:pass@host/db")
	}
	if raw == "memory:" || raw == "memory" || raw == "mem:" {
		return Memory, "", nil
	}
	scheme, _, hasScheme := strings.Cut(raw, "://")
	if hasScheme && scheme == "nats" {
		// Several hosts ("nats://h1:4222,h2:4222?…"), which url.Parse
		// refuses: the nats engine parses the URL itself.
		return Nats, raw, nil
	}
	if !hasScheme {
		if i := strings.IndexByte(raw, ':'); i > 0 && !strings.ContainsAny(raw[:i], `/\.`) {
			return 0, "", fmt.Errorf("store %q: unknown scheme %q: use memory:, a directory path, file:///path or postgres://…", Redact(raw), raw[:i])
		}
		return Dir, raw, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message would repeat the URL, password included
		}
		return 0, "", fmt.Errorf("store %q: %w", Redact(raw), err)
	}
	switch scheme {
	case "file":
		if u.Path == "" {
			return 0, "", fmt.Errorf("store %q: a file URL needs a path, as in file:///var/lib/cairn", Redact(raw))
		}
		return Dir, u.Path, nil
	case "postgres", "postgresql":
		return Postgres, raw, nil
	case "cairn", "kurrentdb", "esdb":
		return Remote, raw, nil
	}
	return 0, "", fmt.Errorf("store %q: unknown scheme %q: use memory:, a directory path, file:///path, postgres://…, cairn://host:port or nats://host:port", Redact(raw), scheme)
}

// Redact returns raw with any password replaced by "xxxxx", for logs and
// error messages: the password of the user information, and the values of
// password and sslpassword parameters.
func Redact(raw string) string {
	// A URL whose scheme is not what stands before "://" to url.Parse
	// ("#://u:p@h" is all fragment) is redacted as an unparsable one.
	scheme, _, hasScheme := strings.Cut(raw, "://")
	if u, err := url.Parse(raw); err == nil && (!hasScheme || strings.EqualFold(u.Scheme, scheme)) {
		u.RawQuery = redactQuery(u.RawQuery)
		return u.Redacted()
	}
	// Unparsable: drop whatever stands between "://" and an '@', and the
	// values of password parameters.
	if base, query, ok := strings.Cut(raw, "?"); ok {
		raw = base + "?" + redactQuery(query)
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndexByte(raw, '@'); j > i {
			raw = raw[:i+3] + "xxxxx" + raw[j:]
		}
	}
	return raw
}

// redactQuery replaces the values of the password parameters of a raw
// query, keeping the rest as it is (even where it is malformed).
func redactQuery(query string) string {
	params := strings.Split(query, "&")
	for i, p := range params {
		k, _, ok := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); ok && err == nil && (key == "password" || key == "sslpassword") {
			params[i] = k + "=xxxxx"
		}
	}
	return strings.Join(params, "&")
}
