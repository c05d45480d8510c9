// Package disk registers the embedded on-disk engine (diskstore) with
// storeurl, for directory paths and file:// URLs. Import it for its side
// effect:
//
//	import _ "github.com/cairndb/cairn/storeurl/disk"
//
// The directory is created if needed; storeurl.Options.NoSync opens it
// without fsync.
package disk

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/storeurl"
)

func init() { storeurl.Register(storeurl.Dir, open) }

// open opens the embedded engine in dir.
func open(_ context.Context, dir string, opts storeurl.Options) (cairn.Backend, error) {
	db, err := diskstore.Open(dir, diskstore.Options{NoSync: opts.NoSync, Logger: opts.Store.Logger})
	if err != nil {
		return nil, fmt.Errorf("store %q: %w", dir, err)
	}
	return db, nil
}
