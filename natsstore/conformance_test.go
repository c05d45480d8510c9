package natsstore_test

import (
	"flag"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/storetest"
)

var (
	oneNode  = flag.Bool("one-node", false, "also run the conformance suite on one node alone (TestConformanceOneNode)")
	allSeeds = flag.Bool("all-seeds", false, "run the cluster's model test (TestConformanceCluster/Model) with every seed, not seed0 alone")
)

// One node of a log replicated three times: the contract as a single
// node's callers see it, reads without a sync included. The cluster's
// conformance below covers the contract through the nodes; this one runs
// with -one-node, to keep the package's tests within CI's budget.
func TestConformanceOneNode(t *testing.T) {
	if !*oneNode {
		t.Skip("runs with -one-node")
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
// Each subtest's cluster is made while the one before runs. The model test
// runs its first seed (each takes a minute or more under -race); the
// others with -all-seeds.
func TestConformanceCluster(t *testing.T) {
	pool := newClusterPool(t, 2)
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		if n := t.Name(); !*allSeeds && strings.Contains(n, "/Model/seed") && !strings.HasSuffix(n, "/seed0") {
			t.Skip("runs with -all-seeds")
		}
		return newSpread(pool.take(t))
	})
}
