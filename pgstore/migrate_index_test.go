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

// TestMigrateIndex writes events with the schema of migration 5 (no
// index): groups of appends to streams of categories and system streams,
// with tags and correlation ids, a large append, a soft-deleted and
// recreated stream, truncation and Compact; then migrates. The events
// stored must then be filed as cairn.IndexKeys says, read back through
// several pages of the backfill's cursor, and appends must go on numbering
// the lists; an earlier build, which would write events without their
// entries, can write nothing.
func TestMigrateIndex(t *testing.T) {
	ctx := context.Background()
	pgstore.SetBackfillBatch(t, 7)
	s := pgstore.MigratedTo(t, 5)
	ev := func(typ, meta string, tags ...string) cairn.EventData {
		e := cairn.EventData{ID: uuid.New(), Type: typ, Data: []byte(`{}`), Tags: tags}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		return e
	}
	req := func(stream string, events ...cairn.EventData) cairn.AppendRequest {
		return cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: events}
	}
	bulk := make([]cairn.EventData, 300)
	for i := range bulk {
		bulk[i] = ev("Bulk", "")
	}
	pgstore.AppendV4(t, s,
		req("order-1", ev("Placed", `{"$correlationId":"k1"}`, "customer:7"), ev("Paid", `{"$correlationId":"k1"}`)),
		req("order-2", ev("Placed", "", "customer:8", "region:eu")),
		req("$system", ev("$Sys", `{"$correlationId":"k1"}`, "customer:7")),
		req("order-1", ev("Shipped", "")),
	)
	pgstore.AppendV4(t, s, req("bulk-1", bulk...))
	pgstore.AppendV4(t, s,
		req("user-1", ev("Registered", `{"$correlationId":"a\u0000b"}`)),
		req("order-3", ev("Placed", "", "customer:7")),
		req("order-4", ev("Placed", "")),
	)
	if err := s.DeleteStream(ctx, "order-4", cairn.Any); err != nil {
		t.Fatal(err)
	}
	pgstore.AppendV4(t, s, req("order-4", ev("Placed", "")), req("nocategory", ev("Placed", "")))
	if err := s.TruncateStream(ctx, "bulk-1", 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// This build reads only schemas it has migrated: the events as stored
	// before, which the migrations leave as they are.
	stored := allEvents(t, s)
	if len(stored) != 209 {
		t.Fatalf("%d events stored", len(stored))
	}
	want := wantIndex(stored)
	checkIndex(t, s, want, byPosition(stored))

	// Appends go on numbering: to a category, a type, a tag, a new stream.
	if _, err := s.Append(ctx, "order-5", cairn.NoStream, []cairn.EventData{ev("Placed", "", "customer:7")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []cairn.AppendRequest{req("order-1", ev("Paid", `{"$correlationId":"k1"}`)), req("bulk-1", ev("Bulk", ""))}); err != nil {
		t.Fatal(err)
	}
	now := allEvents(t, s)
	checkIndex(t, s, wantIndex(now), byPosition(now))

	// A query and a condition over events written before the migration.
	q := cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Placed"}, Tags: []string{"customer:7"}}}}
	got, err := s.ReadQuery(ctx, q, 0, 10, cairn.Forward)
	if err != nil || len(got) != 3 {
		t.Fatalf("query of events placed by customer 7: %d events, %v; want 3", len(got), err)
	}
	_, err = s.AppendBatch(ctx, []cairn.AppendRequest{{Stream: "order-6", Expected: cairn.NoStream, Events: []cairn.EventData{ev("Placed", "")},
		Condition: &cairn.AppendCondition{FailIfEventsMatch: q, After: &got[1].Position}}})
	if want := (&cairn.ConditionError{Position: got[2].Position}); err == nil || !strings.Contains(err.Error(), want.Error()) {
		t.Fatalf("condition over events written before the migration: %v, want %v", err, want)
	}

	// An earlier build still running can write nothing: its append_group
	// is gone, and its inserts of chunks lack the column indexed.
	chunks := pgx.Identifier{s.Schema(), "chunks"}.Sanitize()
	if _, err := s.Pool().Exec(ctx, `INSERT INTO `+chunks+` (position, stream, version, count, ids, data, created)
		VALUES (1000, 'old', 0, 1, ARRAY[gen_random_uuid()], ARRAY['\x00'::bytea], now())`); err == nil || !strings.Contains(err.Error(), "indexed") {
		t.Fatalf("an insert of a chunk by an earlier build: %v, want a refusal", err)
	}
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.proname = 'append_group'`, s.Schema()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d append_group functions, %v; want 1", n, err)
	}
}
