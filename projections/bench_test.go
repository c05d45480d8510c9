package projections_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/internal/cputime"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
)

const benchEvents = 50_000

// benchRuns numbers the projections the benchmarks create, which must
// have names of their own in a store that outlives a run (-count).
var benchRuns atomic.Int64

// benchStore holds benchEvents events of 100 streams of the category
// "order", appended 100 at a time.
func benchStore(b *testing.B, engine string) *cairn.Store {
	var be cairn.Backend = memstore.New()
	if engine == "disk" {
		db, err := diskstore.Open(b.TempDir(), diskstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		be = db
	}
	store := cairn.NewStore(be, cairn.Options{})
	b.Cleanup(func() { store.Close() })
	ctx := context.Background()
	for i := 0; i < benchEvents; i += 100 {
		evs := make([]cairn.EventData, 100)
		for j := range evs {
			evs[j] = cairn.EventData{Type: "OrderPlaced", Data: fmt.Appendf(nil, `{"amount":%d,"n":%d}`, j, i+j)}
		}
		if _, err := store.Append(ctx, fmt.Sprintf("order-%d", i/100%100), cairn.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	return store
}

// report reports events/s (wall clock) and the process's CPU time per
// event, which a loaded machine disturbs less.
func report(b *testing.B, cpu0 time.Duration) {
	n := float64(benchEvents) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/n, "cpu-ns/event")
}

// BenchmarkProjection measures how fast projections process events already
// in the store, from the start to their checkpoint at the end: events/s and
// cpu-ns/event are the figures to read. "read" is the baseline: the same
// events read from the log, without a projection.
func BenchmarkProjection(b *testing.B) {
	queries := []struct {
		name  string
		query string
		opts  projections.CreateOptions
	}{
		{"count", countQuery, projections.CreateOptions{}},
		{"foreachStream", `fromCategory('order').foreachStream().when({
			$init: function () { return { total: 0 }; },
			OrderPlaced: function (s, e) { s.total += e.body.amount; }
		})`, projections.CreateOptions{}},
		{"emit", `fromCategory('order').when({
			OrderPlaced: function (s, e) { if (e.body.n % 10 === 0) emit('tenth', 'Tenth', { n: e.body.n }); }
		})`, projections.CreateOptions{Emit: true}},
	}
	for _, engine := range []string{"memory", "disk"} {
		store := benchStore(b, engine)
		ctx := context.Background()
		b.Run(engine+"/read", func(b *testing.B) {
			cpu0 := cputime.Process()
			for b.Loop() {
				n := 0
				for _, err := range store.All(ctx, 0, cairn.Forward) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n < benchEvents {
					b.Fatalf("read %d events", n)
				}
			}
			report(b, cpu0)
		})
		for _, q := range queries {
			b.Run(engine+"/"+q.name, func(b *testing.B) {
				m, err := projections.NewManager(ctx, store, projections.Options{HandlerTimeout: time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close(ctx)
				cpu0 := cputime.Process()
				for b.Loop() {
					name := fmt.Sprintf("%s-%d", q.name, benchRuns.Add(1))
					if _, err := m.Create(ctx, name, q.query, q.opts); err != nil {
						b.Fatal(err)
					}
					for {
						st, err := m.Statistics(ctx, name)
						if err != nil {
							b.Fatal(err)
						}
						if st.EventsProcessedAfterRestart >= benchEvents {
							break
						}
						if st.StateReason != "" {
							b.Fatal(st.StateReason)
						}
						time.Sleep(time.Millisecond)
					}
					// Disable writes the last checkpoint, and with it the
					// emitted events still held.
					if err := m.Disable(ctx, name); err != nil {
						b.Fatal(err)
					}
				}
				report(b, cpu0)
			})
		}
	}
}
