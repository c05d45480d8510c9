// Package postgres registers the PostgreSQL engine (pgstore) with storeurl,
// for postgres:// and postgresql:// URLs. Import it for its side effect:
//
//	import _ "github.com/cairndb/cairn/storeurl/postgres"
//
// The URL may name the schema with a "schema" parameter (default "cairn").
package postgres

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/storeurl"
)

func init() { storeurl.Register(storeurl.Postgres, open) }

// open opens the PostgreSQL engine. Its errors do not repeat the URL, which
// may hold a password.
func open(ctx context.Context, url string, opts storeurl.Options) (cairn.Backend, error) {
	db, err := pgstore.Open(ctx, url, pgstore.Options{Logger: opts.Store.Logger})
	if err != nil {
		return nil, fmt.Errorf("store postgres: %w", err)
	}
	return db, nil
}
