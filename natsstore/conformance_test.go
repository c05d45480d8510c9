package natsstore_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storetest"
)

// One node of a log replicated three times: the contract as a single
// node's callers see it.
func TestConformanceOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster's conformance covers a node's; -short skips this one")
	}
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		db := openNode(t, t.TempDir(), newStream(), 0)
		t.Cleanup(func() { _ = db.Close() })
		return db
	})
}

// Three nodes of one log, each call to the next node in turn: writes
// spread over the nodes, and reads from a node that synced first. The
// nodes together behave as one store.
func TestConformanceCluster(t *testing.T) {
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		nodes, _ := newCluster(t)
		return &spread{nodes: nodes}
	})
}
