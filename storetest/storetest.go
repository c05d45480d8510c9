// Package storetest is the conformance suite of cairn's storage engines.
//
// An engine's test calls [TestBackend] with a constructor; the suite runs
// every rule of the backend contract as a subtest, each against a fresh
// backend, through a [cairn.Store] as users reach it. Tests of optional
// capabilities (batch append, truncation, tombstones, snapshots,
// transactional projections, compaction, notifications…) run when the
// backend implements the interface, and are skipped with a message
// otherwise; the Fallbacks rules then check what the Store does in its
// place. Where the contract makes the engine itself responsible (the
// [cairn.Tx] handed to projections, [cairn.Notifier]), the suite calls the
// engine directly.
//
//	func TestConformance(t *testing.T) {
//		storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
//			b := myengine.Open(t.TempDir())
//			t.Cleanup(func() { b.Close() })
//			return b
//		})
//	}
//
// The last rule, Model, is a differential test: random appends, batches,
// truncations, deletes, tombstones and compactions against the engine and
// against the memory engine, compared event for event after every step.
// [RunModel] exposes it, with restarts (or crashes) between steps, for an
// engine's own tests.
//
// The constructor's cleanup should close the backend and ignore
// [cairn.ErrClosed], since some subtests close it themselves. Run the suite
// under -race: several subtests race appends and reads against each other.
package storetest

import (
	"testing"

	"github.com/cairndb/cairn"
)

// NewBackend returns a fresh, empty backend for one subtest.
type NewBackend func(t *testing.T) cairn.Backend

// TestBackend runs the conformance suite against the engine that newBackend
// makes.
func TestBackend(t *testing.T, newBackend NewBackend) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewBackend)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"AppendResult", testAppendResult},
		{"RecordedEvent", testRecordedEvent},
		{"AppendLeavesEvents", testAppendLeavesEvents},
		{"ContiguousAppends", testContiguousAppends},
		{"ReadStream", testReadStream},
		{"ReadAll", testReadAll},
		{"Iterators", testIterators},
		{"SizedReads", testSizedReads},
		{"ConcurrentExactAppends", testConcurrentExactAppends},
		{"ConcurrentFollower", testConcurrentFollower},
		{"ReadWhileCreating", testReadWhileCreating},
		{"IdempotentRetry", testIdempotentRetry},
		{"SoftDelete", testSoftDelete},
		{"Tombstone", testTombstone},
		{"DeleteExpectedVersion", testDeleteExpectedVersion},
		{"DeletionRecords", testDeletionRecords},
		{"DeletionRecordsConcurrent", testDeletionRecordsConcurrent},
		{"Truncate", testTruncate},
		{"AppendBatch", testAppendBatch},
		{"AppendBatchCheckOnly", testAppendBatchCheckOnly},
		{"Snapshots", testSnapshots},
		{"MaestroSequences", testMaestroSequences},
		{"CommitAll", testCommitAll},
		{"TxOwnWrites", testTxOwnWrites},
		{"TxTableNames", testTxTableNames},
		{"TxEmptyKey", testTxEmptyKey},
		{"TxKeys", testTxKeys},
		{"TxCopiesValues", testTxCopiesValues},
		{"TxEndsWithProjection", testTxEndsWithProjection},
		{"ReadModelScan", testReadModelScan},
		{"ReadModelArgs", testReadModelArgs},
		{"BadInput", testBadInput},
		{"ListStreams", testListStreams},
		{"Metadata", testMetadata},
		{"Notification", testNotification},
		{"NotifierCommits", testNotifierCommits},
		{"NotifierStop", testNotifierStop},
		{"NotifierClose", testNotifierClose},
		{"CancelledContext", testCancelledContext},
		{"Compact", testCompact},
		{"HealthAndSize", testHealthAndSize},
		{"IndexNumbering", testIndexNumbering},
		{"IndexParity", testIndexParity},
		{"IndexReads", testIndexReads},
		{"QueryMatching", testQueryMatching},
		{"QueryReads", testQueryReads},
		{"QueryFollowsLog", testQueryFollowsLog},
		{"QueryBadInput", testQueryBadInput},
		{"ConditionRace", testConditionRace},
		{"ConditionDisjointTags", testConditionDisjointTags},
		{"ConditionAfter", testConditionAfter},
		{"ConditionAndExpectedVersion", testConditionAndExpectedVersion},
		{"ConditionBatch", testConditionBatch},
		{"ConditionCommitAll", testConditionCommitAll},
		{"ConditionRetry", testConditionRetry},
		{"DCBExamples", testDCBExamples},
		{"Fallbacks", testFallbacks},
		{"Close", testClose},
		{"Model", testModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newBackend) })
	}
}

// open returns a Store over a fresh backend, with opts.
func open(t *testing.T, nb NewBackend, opts ...cairn.Options) (*cairn.Store, cairn.Backend) {
	t.Helper()
	b := nb(t)
	var o cairn.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	return cairn.NewStore(b, o), b
}
