package projections_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
)

// deletedQuery counts the events of each order stream and what $deleted
// is told of its deletions.
const deletedQuery = `fromCategory('order').foreachStream().when({
	$init: function () { return { n: 0, deleted: 0 }; },
	OrderPlaced: function (s, e) { s.n++; },
	$deleted: function (s, e, streamId, isSoftDeleted) {
		s.deleted++;
		s.stream = streamId;
		s.soft = isSoftDeleted;
		s.type = e.eventType;
		s.partition = e.partition;
	}
})`

// TestDeletedIsCalledForADeletedStream: a foreachStream projection's
// $deleted runs for the partition of each stream of its source that is
// deleted, soft or hard, with the stream's id and whether the delete was
// soft; streams outside its source, and streams it never saw an event of,
// call nothing.
func TestDeletedIsCalledForADeletedStream(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "order-1", "OrderPlaced", `{}`, `{}`)
	appendJSON(t, store, "order-2", "OrderPlaced", `{}`)
	appendJSON(t, store, "invoice-1", "OrderPlaced", `{}`)
	create(t, m, "orders", deletedQuery, projections.CreateOptions{})
	waitState(t, m, "orders", "order-1", `{"n":2,"deleted":0}`)

	if err := store.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := store.TombstoneStream(ctx, "order-2", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteStream(ctx, "invoice-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	if err := store.TombstoneStream(ctx, "order-9", cairn.Any); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "order-3", "OrderPlaced", `{}`)
	waitState(t, m, "orders", "order-3", `{"n":1,"deleted":0}`)
	waitState(t, m, "orders", "order-1", `{"n":2,"deleted":1,"stream":"order-1","soft":true,"type":"$metadata","partition":"order-1"}`)
	waitState(t, m, "orders", "order-2", `{"n":1,"deleted":1,"stream":"order-2","soft":false,"type":"$streamDeleted","partition":"order-2"}`)
	if b, err := m.State(ctx, "orders", "order-9"); err != nil || b != nil {
		t.Fatalf("a stream never seen has state %s, %v; want none", b, err)
	}

	// Recreated and deleted again: $deleted runs again.
	appendJSON(t, store, "order-1", "OrderPlaced", `{}`)
	if err := store.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "orders", "order-1", `{"n":3,"deleted":2,"stream":"order-1","soft":true,"type":"$metadata","partition":"order-1"}`)
}

// TestDeletedAcrossARestart: a deletion processed and checkpointed before
// a restart is not handled again after it, and one made while no
// projection runs is handled once it runs again.
func TestDeletedAcrossARestart(t *testing.T) {
	engine := memstore.New()
	t.Cleanup(func() { engine.Close() })
	store := cairn.NewStore(engine, cairn.Options{})
	ctx := context.Background()
	m, err := projections.NewManager(ctx, store, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "order-1", "OrderPlaced", `{}`)
	appendJSON(t, store, "order-2", "OrderPlaced", `{}`)
	create(t, m, "orders", deletedQuery, projections.CreateOptions{})
	if err := store.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	want1 := `{"n":1,"deleted":1,"stream":"order-1","soft":true,"type":"$metadata","partition":"order-1"}`
	waitState(t, m, "orders", "order-1", want1)
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// While no projection runs.
	if err := store.TombstoneStream(ctx, "order-2", cairn.Any); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "order-3", "OrderPlaced", `{}`)

	m = newManager(t, cairn.NewStore(engine, cairn.Options{}), testOptions())
	waitState(t, m, "orders", "order-3", `{"n":1,"deleted":0}`)
	waitState(t, m, "orders", "order-2", `{"n":1,"deleted":1,"stream":"order-2","soft":false,"type":"$streamDeleted","partition":"order-2"}`)
	waitState(t, m, "orders", "order-1", want1)
	st := waitStatus(t, m, "orders", "Running")
	if st.EventsProcessedAfterRestart != 2 {
		t.Fatalf("processed %d events after the restart, want 2 (the tombstone and order-3)", st.EventsProcessedAfterRestart)
	}
}

// TestDeletedIsNotCalledWithoutForeachStream: KurrentDB tells only
// projections partitioned by stream of deletions; a partitionBy query
// with $deleted sees none.
func TestDeletedIsNotCalledWithoutForeachStream(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	ctx := context.Background()
	appendJSON(t, store, "order-1", "OrderPlaced", `{"k":"a"}`)
	create(t, m, "by-k", `fromCategory('order').partitionBy(function (e) { return e.body.k; }).when({
		$init: function () { return { n: 0, deleted: 0 }; },
		OrderPlaced: function (s, e) { s.n++; },
		$deleted: function (s) { s.deleted++; }
	})`, projections.CreateOptions{})
	if err := store.DeleteStream(ctx, "order-1", cairn.Any); err != nil {
		t.Fatal(err)
	}
	appendJSON(t, store, "order-2", "OrderPlaced", `{"k":"a"}`)
	waitState(t, m, "by-k", "a", `{"n":2,"deleted":0}`)
}
