// Package storeurl opens a [cairn.Store] from a URL, the way the cairn
// command and server name their engine:
//
//	memory:                  the in-memory engine (nothing is kept)
//	./cairn-data, /var/lib/x a directory: the embedded on-disk engine
//	file:///var/lib/x        the same, as a URL
//	postgres://… postgresql://… a PostgreSQL database
//	cairn://[user:password@]host:port[?tls=true&tlscafile=ca.crt]
//	                         a cairn server, through its cairn.v1 API
//
// An unknown scheme or a malformed URL is an error that says what was
// expected.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/remotestore"
)

// Options configure the opened Store and the engines.
type Options struct {
	// Store configures the facade.
	Store cairn.Options
	// NoSync opens the embedded engine without fsync. It is for tests and
	// benchmarks only: acknowledged appends can be lost in a crash.
	NoSync bool
}

// Open opens the store named by raw.
func Open(ctx context.Context, raw string, opts Options) (*cairn.Store, error) {
	kind, target, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	switch kind {
	case Memory:
		return cairn.NewStore(memstore.New(), opts.Store), nil
	case Dir:
		return openDir(ctx, target, opts)
	case Postgres:
		return openPostgres(ctx, target, opts)
	case Remote:
		b, err := remotestore.Open(target, remotestore.Options{Logger: opts.Store.Logger})
		if err != nil {
			return nil, err
		}
		return cairn.NewStore(b, opts.Store), nil
	}
	return nil, fmt.Errorf("store %q: unknown kind", Redact(raw))
}

// Kind is the kind of engine a URL names.
type Kind int

// The kinds of engine.
const (
	Memory Kind = iota + 1
	Dir
	Postgres
	Remote
)

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
	return 0, "", fmt.Errorf("store %q: unknown scheme %q: use memory:, a directory path, file:///path, postgres://… or cairn://host:port", Redact(raw), scheme)
}

// Redact returns raw with any password replaced by "xxxxx", for logs and
// error messages.
func Redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
			for _, k := range []string{"password", "sslpassword"} {
				if q.Has(k) {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	// Unparsable: drop whatever stands between the scheme and an '@'.
	if i := strings.Index(raw, "://"); i >= 0 {
		if j := strings.LastIndexByte(raw, '@'); j > i {
			return raw[:i+3] + "xxxxx" + raw[j:]
		}
	}
	return raw
}
