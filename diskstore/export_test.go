package diskstore

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
