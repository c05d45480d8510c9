package storeurl

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
)

// openDir opens the embedded engine in dir.
func openDir(ctx context.Context, dir string, opts Options) (*cairn.Store, error) {
	return nil, fmt.Errorf("store %q: the embedded engine is not available in this build", dir)
}

// openPostgres opens the PostgreSQL engine.
func openPostgres(ctx context.Context, url string, opts Options) (*cairn.Store, error) {
	return nil, fmt.Errorf("store: the PostgreSQL engine is not available in this build")
}
