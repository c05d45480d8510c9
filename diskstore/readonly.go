package diskstore

import (
	"errors"
	"io"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// The errors of a read-only store (see [Options.ReadOnly]).
var (
	// ErrReadOnly is the error of every write to a store opened read-only.
	ErrReadOnly = errors.New("diskstore: the store is open read-only")
	// ErrNoStore: a read-only open found no store in the directory.
	ErrNoStore = errors.New("diskstore: no store in the directory")
	// ErrNeedsRecovery: a read-only open found a store that was not
	// closed cleanly, whose recovery writes the index, or a store of
	// on-disk format 2, whose conversion writes it (the error then says
	// so).
	ErrNeedsRecovery = errors.New("diskstore: the store was not closed cleanly and must be recovered by a read-write open before it can be opened read-only")
)

// flushUnlessReadOnly flushes the index after recovery, which a read-only
// store never needs: it replays nothing.
func (d *DB) flushUnlessReadOnly() error {
	if d.opts.ReadOnly {
		return nil
	}
	return d.pdb.Flush()
}

// sharedLockFS takes pebble's directory lock shared, without creating or
// writing the lock file, so that read-only opens exclude a writer and not
// each other. Filesystems other than the operating system's keep their own
// locking.
type sharedLockFS struct{ vfs.FS }

func (fs sharedLockFS) Lock(name string) (io.Closer, error) {
	if fs.FS != vfs.Default {
		return fs.FS.Lock(name)
	}
	return lockShared(name)
}
