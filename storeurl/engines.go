package storeurl

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/pgstore"
)

// openDir opens the embedded engine in dir, creating the directory if needed.
func openDir(ctx context.Context, dir string, opts Options) (*cairn.Store, error) {
	db, err := diskstore.Open(dir, diskstore.Options{NoSync: opts.NoSync, Logger: opts.Store.Logger})
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", dir, err)
	}
	return cairn.NewStore(db, opts.Store), nil
}

// openPostgres opens the PostgreSQL engine. The URL may name the schema with
// a "schema" parameter (default "cairn"). Errors do not repeat the URL, which
// may hold a password.
func openPostgres(ctx context.Context, url string, opts Options) (*cairn.Store, error) {
	db, err := pgstore.Open(ctx, url, pgstore.Options{Logger: opts.Store.Logger})
	if err != nil {
		return nil, fmt.Errorf("store postgres: %w", err)
	}
	return cairn.NewStore(db, opts.Store), nil
}
