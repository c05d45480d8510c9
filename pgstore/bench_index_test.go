package pgstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// BenchmarkReadQuery reads 1000 matching events out of a log of 1M events
// of 256 bytes (1000 appends of 1000 events, to 100 streams of one
// category). "scattered": one event of each append carries the tag "hit",
// so the 1000 matches lie in 1000 chunks; "item": the same with a type
// too (the tag's list is read, the type checked); "run": the 1000 events
// of one append, by the tag they all carry; "log": ReadAll of 1000 events,
// for comparison. Run it with, for example:
//
//	CAIRN_TEST_POSTGRES=postgres://… go test -run '^$' -bench ReadQuery -benchtime 200x ./pgstore
func BenchmarkReadQuery(b *testing.B) {
	ctx := context.Background()
	s := openSchema(b, pgtest.Schema(b, "cairn_bench_query"), pgstore.Options{})
	const appends, size = 1000, 1000
	for i := range appends {
		events := make([]cairn.EventData, size)
		for k := range events {
			events[k] = cairn.EventData{ID: uuid.Must(uuid.NewV7()), Type: "Bulk", ContentType: cairn.ContentBinary, Data: payload}
			if k == i%size {
				events[k].Tags = []string{"hit"}
			}
			if i == appends/2 {
				events[k].Tags = append(events[k].Tags, "run")
			}
		}
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%100), cairn.Any, events); err != nil {
			b.Fatal(err)
		}
	}
	// As autovacuum would after such a load: the chunks' visibility map
	// lets the probes of their key skip the table.
	for _, table := range []string{"chunks", "index_runs"} {
		if _, err := s.Pool().Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{s.Schema(), table}.Sanitize()); err != nil {
			b.Fatal(err)
		}
	}
	read := func(b *testing.B, q *cairn.Query) {
		for b.Loop() {
			var got []cairn.Event
			var err error
			if q == nil {
				got, err = s.ReadAll(ctx, appends/2*size, 1000, cairn.Forward)
			} else {
				got, err = s.ReadQuery(ctx, *q, 0, 1000, cairn.Forward)
			}
			if err != nil || len(got) != 1000 {
				b.Fatalf("%d events, %v", len(got), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/read")
	}
	b.Run("scattered", func(b *testing.B) {
		read(b, &cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"hit"}}}})
	})
	b.Run("item", func(b *testing.B) {
		read(b, &cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Bulk", "Other"}, Tags: []string{"hit"}}}})
	})
	b.Run("run", func(b *testing.B) {
		read(b, &cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"run"}}}})
	})
	b.Run("log", func(b *testing.B) { read(b, nil) })
}
