package natsstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Sync goes through the log: on an idle cluster it logs a record of its
// own and returns once the node applied it. Asking the stream's leader
// for the log's last record instead lets a node cut off from the NATS
// majority answer from a leader that has not yet noticed it was replaced
// (cmd/cairn TestClusterPartition reads through such a node).
func TestSyncGoesThroughTheLog(t *testing.T) {
	nodes, stream := newCluster(t)
	nc, err := nats.Connect(natsURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	last := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	for i, n := range nodes {
		other := nodes[(i+1)%len(nodes)]
		res, err := other.Append(ctx, stream+"-s", cairn.Any, []cairn.EventData{{ID: uuid.New(), Type: "E"}})
		if err != nil {
			t.Fatal(err)
		}
		before := last()
		if err := n.Sync(ctx); err != nil {
			t.Fatalf("node %d: Sync: %v", i, err)
		}
		if after := last(); after <= before {
			t.Fatalf("node %d: Sync returned and the log still ends at record %d: it did not go through the log", i, after)
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
