package pgstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The benchmarks compare appends with the same load as plain INSERTs into a
// bare table (no keys, no indexes) in the same database, with the same
// number of connections. Each writer appends to a stream of its own. Run them with, for example:
//
//	CAIRN_TEST_POSTGRES=postgres://… go test -run '^$' -bench . -benchtime 5s ./pgstore

var payload = make([]byte, 256)

// parallel runs n operations split over writers goroutines, op(w, i) being
// the i-th operation of writer w, and reports events per second.
func parallel(b *testing.B, writers, perOp int, op func(w, i int) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if next.Add(1) > int64(b.N) {
					return
				}
				if err := op(w, i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "events/s")
}

func benchEvents(n int) []cairn.EventData {
	out := make([]cairn.EventData, n)
	for i := range out {
		out[i] = cairn.EventData{ID: uuid.Must(uuid.NewV7()), Type: "Bench", ContentType: cairn.ContentBinary, Data: payload}
	}
	return out
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", size, writers), func(b *testing.B) {
				s := openSchema(b, pgtest.Schema(b, "cairn_test"), pgstore.Options{MaxConns: int32(writers)})
				st := cairn.NewStore(s, cairn.Options{})
				ctx := context.Background()
				parallel(b, writers, size, func(w, i int) error {
					_, err := st.Append(ctx, fmt.Sprintf("w%d", w), cairn.Any, benchEvents(size)...)
					return err
				})
			})
		}
	}
}

// BenchmarkPlainInsert is the baseline: the same rows inserted into a bare
// table, one autocommit INSERT per append.
func BenchmarkPlainInsert(b *testing.B) {
	for _, size := range []int{1, 100} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("events=%d/writers=%d", size, writers), func(b *testing.B) {
				s := openSchema(b, pgtest.Schema(b, "cairn_test"), pgstore.Options{MaxConns: int32(writers)})
				ctx := context.Background()
				table := pgx.Identifier{s.Schema(), "bare"}.Sanitize()
				if _, err := s.Pool().Exec(ctx, "CREATE TABLE "+table+
					" (stream text, version bigint, id uuid, type text, data bytea, created timestamptz)"); err != nil {
					b.Fatal(err)
				}
				sql := "INSERT INTO " + table + " (stream, version, id, type, data, created) " +
					"SELECT $1, v, i, $3, $4, now() FROM unnest($2::uuid[]) WITH ORDINALITY AS u(i, v)"
				parallel(b, writers, size, func(w, i int) error {
					ids := make([]uuid.UUID, size)
					for k := range ids {
						ids[k] = uuid.Must(uuid.NewV7())
					}
					_, err := s.Pool().Exec(ctx, sql, fmt.Sprintf("w%d", w), ids, "Bench", payload)
					return err
				})
			})
		}
	}
}
