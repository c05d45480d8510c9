package diskstore

// SetPurgeRuns sets how many runs one purge step removes, for a test, and
// returns what puts it back.
func SetPurgeRuns(n int) (restore func()) {
	was := purgeRuns
	purgeRuns = n
	return func() { purgeRuns = was }
}
