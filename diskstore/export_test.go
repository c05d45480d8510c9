package diskstore

import (
	"errors"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// WithPendingRecords returns o with the runs and retry records in memory
// handed off once there are n of them, for a test.
func WithPendingRecords(o Options, n int) Options {
	o.pendingRecords = n
	return o
}

// SetPurgeRuns sets how many runs one purge step removes, for a test, and
// returns what puts it back.
func SetPurgeRuns(n int) (restore func()) {
	was := purgeRuns
	purgeRuns = n
	return func() { purgeRuns = was }
}

// SetPurgeStepped has fn called after each purge step of a compaction but
// the last, for a test, and returns what puts it back.
func SetPurgeStepped(fn func() error) (restore func()) {
	was := purgeStepped
	purgeStepped = fn
	return func() { purgeStepped = was }
}

// SetFlushedToFree has fn called once a compaction or a reclaim has
// flushed the index, before it frees anything, for a test, and returns
// what puts it back.
func SetFlushedToFree(fn func()) (restore func()) {
	was := flushedToFree
	flushedToFree = fn
	return func() { flushedToFree = was }
}

// SetIngestStarting has fn called by the ingester before it ingests each
// batch of retry records handed to it, for a test, and returns what puts
// it back. It must be set before the store is opened.
func SetIngestStarting(fn func()) (restore func()) {
	was := ingestStarting
	ingestStarting = fn
	return func() { ingestStarting = was }
}

// IndexMarks reads the index of the store in dir (closed) and returns the
// next positions of its marker and of its ID mark, -1 for none.
func IndexMarks(fs vfs.FS, dir string) (marker, idMark int64, err error) {
	pdb, err := pebble.Open(dir, &pebble.Options{FS: fs, ReadOnly: true})
	if err != nil {
		return 0, 0, err
	}
	next := func(key []byte) int64 {
		m, ok, rerr := readMarkerAt(pdb, key)
		err = errors.Join(err, rerr)
		if !ok {
			return -1
		}
		return int64(m.next)
	}
	marker, idMark = next(markerKey), next(idMarkKey)
	return marker, idMark, errors.Join(err, pdb.Close())
}
