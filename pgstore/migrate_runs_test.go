package pgstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// TestMigrateGrowingRuns writes lone appends with the schema of migration
// 7 (append_one adds a row to index_runs for every key of every append),
// then migrates in place: the events and index entries stored before read
// back as they were; the next lone appends continue the runs written
// before, lengthening them instead of adding rows, at the next number of
// each list; and retries are still recognised, both the one the stream
// refuses (an exact version now behind) and the one it accepts (any
// version), which fails on the first id and is run step by step.
func TestMigrateGrowingRuns(t *testing.T) {
	ctx := context.Background()
	s := pgstore.MigratedTo(t, 7)
	ev := func(tags ...string) cairn.EventData {
		return cairn.EventData{ID: uuid.New(), Type: "Placed", Data: []byte(`{}`), Tags: tags}
	}
	rows := func() int {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "index_runs"}.Sanitize()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 3 {
		if _, err := s.Append(ctx, "order-1", cairn.Exact(int64(i)-1), []cairn.EventData{ev("customer:7")}); err != nil {
			t.Fatal(err)
		}
	}
	// The stream lists once; type, category and tag three times each.
	if n := rows(); n != 11 {
		t.Fatalf("%d index rows before the migration, want 11", n)
	}

	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	stored := allEvents(t, s)
	if len(stored) != 3 {
		t.Fatalf("%d events read after the migration, want the 3 written before", len(stored))
	}
	checkIndex(t, s, wantIndex(stored), byPosition(stored))

	again := ev("customer:7")
	for i := range 3 {
		e := ev("customer:7")
		if i == 2 {
			e = again
		}
		res, err := s.Append(ctx, "order-1", cairn.Exact(int64(i)+2), []cairn.EventData{e})
		if err != nil || res.Version != int64(i)+3 || res.Position != uint64(i)+3 {
			t.Fatalf("append %d after the migration: %+v, %v", i, res, err)
		}
	}
	// The three keys' last runs lengthened: no row added.
	if n := rows(); n != 11 {
		t.Fatalf("%d index rows after three more appends that continue every run, want 11", n)
	}
	now := allEvents(t, s)
	if len(now) != 6 {
		t.Fatalf("%d events after appending 3 more to 3", len(now))
	}
	checkIndex(t, s, wantIndex(now), byPosition(now))

	// Retries of the last append: refused by the stream, and accepted.
	for _, exp := range []cairn.ExpectedVersion{cairn.Exact(4), cairn.Any} {
		res, err := s.Append(ctx, "order-1", exp, []cairn.EventData{again})
		if err != nil || res.Version != 5 || res.Position != 5 {
			t.Fatalf("retry with expected version %v: %+v, %v; want the recorded version 5 at position 5", exp, res, err)
		}
	}
	// The same id as the first event of an append to another stream is a
	// duplicate, and writes nothing.
	if _, err := s.Append(ctx, "order-2", cairn.Any, []cairn.EventData{again}); !errors.Is(err, cairn.ErrDuplicateEvent) {
		t.Fatalf("the first id of order-1's append, appended to order-2: %v, want ErrDuplicateEvent", err)
	}
	if got := allEvents(t, s); len(got) != 6 {
		t.Fatalf("%d events after the retries, want 6", len(got))
	}
	checkIndex(t, s, wantIndex(allEvents(t, s)), byPosition(allEvents(t, s)))
}
