package storetest_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/storetest"
)

// requiredOnly exposes the methods of cairn.Backend of the engine it wraps,
// and none of its optional capabilities.
type requiredOnly struct{ cairn.Backend }

// TestRequiredOnly runs the whole suite through the Store over an engine
// with only the required interface: the Store's fallbacks (a serial
// AppendBatch, sized reads cut from whole ones, Compact and Health that do
// nothing, ErrNotSupported for the rest) meet every rule, and the rules that
// need a capability skip.
func TestRequiredOnly(t *testing.T) {
	var b cairn.Backend = requiredOnly{memstore.New()}
	for name, ok := range map[string]bool{
		"BatchAppender":   is[cairn.BatchAppender](b),
		"SizedReader":     is[cairn.SizedReader](b),
		"Truncater":       is[cairn.Truncater](b),
		"Tombstoner":      is[cairn.Tombstoner](b),
		"Compacter":       is[cairn.Compacter](b),
		"DiskSizer":       is[cairn.DiskSizer](b),
		"HealthChecker":   is[cairn.HealthChecker](b),
		"Snapshotter":     is[cairn.Snapshotter](b),
		"TxCommitter":     is[cairn.TxCommitter](b),
		"ReadModelReader": is[cairn.ReadModelReader](b),
		"Notifier":        is[cairn.Notifier](b),
		"IndexReader":     is[cairn.IndexReader](b),
		"Querier":         is[cairn.Querier](b),
	} {
		if ok {
			t.Fatalf("the wrapped engine still implements %s", name)
		}
	}
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		b := memstore.New()
		t.Cleanup(func() { b.Close() })
		return requiredOnly{b}
	})
}

func is[T any](b cairn.Backend) bool {
	_, ok := b.(T)
	return ok
}
