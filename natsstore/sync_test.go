package natsstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
	"github.com/google/uuid"
)

// Sync goes through the log: on an idle cluster it logs a record of its
// own and returns once the node applied it. Asking the stream's leader
// for the log's last record instead lets a node cut off from the NATS
// majority answer from a leader that has not yet noticed it was replaced
// (cmd/cairn TestClusterPartition reads through such a node).
func TestSyncGoesThroughTheLog(t *testing.T) {
	nodes, stream := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, n := range nodes {
		other := nodes[(i+1)%len(nodes)]
		res, err := other.Append(ctx, stream+"-s", cairn.Any, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
		if err != nil {
			t.Fatal(err)
		}
		// The node that appended applied the append's record before it
		// answered: the log's last record, nothing else writing.
		last := natsstore.AppliedSeq(other)
		if err := n.Sync(ctx); err != nil {
			t.Fatalf("node %d: Sync: %v", i, err)
		}
		// The log is read through the nodes, not asked for its last
		// record: a new stream's servers may answer that from a copy
		// behind the leader's.
		if got := natsstore.AppliedSeq(n); got <= last {
			t.Fatalf("node %d: Sync returned having applied up to record %d, the append's record: it did not go through the log", i, got)
		}
		evs, err := n.ReadStream(ctx, stream+"-s", cairn.StreamEnd, 1, cairn.Backward)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if len(evs) != 1 || evs[0].Position != res.Position {
			t.Fatalf("node %d after Sync: last event %v, want the one appended through node %d at position %d", i, evs, (i+1)%len(nodes), res.Position)
		}
	}
}
