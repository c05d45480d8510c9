package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestMigrateDurable writes events with the schema of migration 6 (groups
// committed synchronously, the head row's lock held through the flush),
// then migrates: every event stored before is read back, by the log, its
// stream and the index, as durable; appends go on at the next position and
// the next number of every list; and an earlier build still running can
// write nothing, as its append_group and index_append are gone.
func TestMigrateDurable(t *testing.T) {
	ctx := context.Background()
	s := pgstore.MigratedTo(t, 6)
	ev := func(typ string, tags ...string) cairn.EventData {
		return cairn.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`), Tags: tags}
	}
	req := func(stream string, expected cairn.ExpectedVersion, events ...cairn.EventData) cairn.AppendRequest {
		return cairn.AppendRequest{Stream: stream, Expected: expected, Events: events}
	}
	pgstore.AppendV6(t, s, req("order-1", cairn.NoStream, ev("Placed", "customer:7"), ev("Paid")), req("order-2", cairn.NoStream, ev("Placed", "customer:8")))
	pgstore.AppendV6(t, s, req("order-1", cairn.Exact(1), ev("Shipped", "customer:7")))

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	stored := allEvents(t, s)
	if len(stored) != 4 {
		t.Fatalf("%d events read after the migration, want the 4 written before", len(stored))
	}
	checkIndex(t, s, wantIndex(stored), byPosition(stored))
	if events, err := s.ReadStream(ctx, "order-1", 0, 10, cairn.Forward); err != nil || len(events) != 3 {
		t.Fatalf("order-1 after the migration: %d events, %v", len(events), err)
	}

	// Appends go on: alone (append_one), in a group, in a batch.
	st := cairn.NewStore(s, cairn.Options{})
	res, err := st.Append(ctx, "order-1", cairn.Exact(2), ev("Delivered", "customer:7"))
	if err != nil || res.Position != 4 || res.Version != 3 {
		t.Fatalf("append after the migration: %+v, %v; want version 3 at position 4", res, err)
	}
	if _, err := st.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "order-3", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", "customer:7")}},
		cairn.AppendRequest{Stream: "order-2", Expected: cairn.Exact(0), Events: []cairn.EventData{ev("Paid")}}); err != nil {
		t.Fatal(err)
	}
	now := allEvents(t, s)
	if len(now) != 7 {
		t.Fatalf("%d events after appending 3 more to 4", len(now))
	}
	checkIndex(t, s, wantIndex(now), byPosition(now))

	// An earlier build can write nothing.
	for _, fn := range []string{"append_group(text[], bigint[], int[], uuid[], text[], smallint[], int[], bytea[], bytea[], text[], int[], text, int[], smallint[], text[], int[], int[], boolean[], smallint[], text[], bigint[], bigint[], int[], int[], bigint[], text[], text[], boolean[])",
		"index_append(bigint, smallint[], text[], bigint[], bigint[], int[])"} {
		var found *string
		name := pgx.Identifier{s.Schema()}.Sanitize() + "." + fn
		if err := s.Pool().QueryRow(ctx, `SELECT to_regprocedure($1)::text`, name).Scan(&found); err != nil || found != nil {
			t.Fatalf("function %s after the migration: %v, %v; want it gone", strings.Split(fn, "(")[0], found, err)
		}
	}
}
