package subscription_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

// benchEngines are the engines benchmarked. The embedded engine runs with
// its default, durable settings: an append returns after fsync. PostgreSQL
// runs when CAIRN_TEST_POSTGRES is set.
func benchEngines() []struct {
	name string
	open func(b *testing.B) *cairn.Store
} {
	return []struct {
		name string
		open func(b *testing.B) *cairn.Store
	}{
		{"memory", func(b *testing.B) *cairn.Store { return memstore.Open() }},
		{"disk", func(b *testing.B) *cairn.Store {
			db, err := diskstore.Open(b.TempDir(), diskstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			s := cairn.NewStore(db, cairn.Options{})
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"postgres", func(b *testing.B) *cairn.Store { return openPostgres(b).store }},
	}
}

// BenchmarkAppendToDelivery measures the time from the start of an append
// to the delivery of its event to a live $all subscriber, while 64 writers
// append one event at a time to their own streams with an exact expected
// version (workload W2). It reports the p50 and p99 latencies and the
// events delivered per second, and, as commit-p50/p99, the time from the
// return of the append to the delivery (zero when the subscriber had the
// event before the writer had its result): the part the subscription adds.
func BenchmarkAppendToDelivery(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			store := eng.open(b)
			appendToDelivery(b, store, func(ctx context.Context) (*subscription.Subscription, error) {
				return subscription.All(ctx, store, subscription.End, subscription.Options{})
			})
		})
	}
}

// BenchmarkCategoryAppendToDelivery is BenchmarkAppendToDelivery for a
// subscriber of the category stream $ce-writer, with its links resolved,
// on the engines that keep the index: how far behind the head a category
// subscription delivers under W2 load. It also reports, as lag-p50/p99,
// how many positions the head of the log was ahead of each event when it
// was delivered.
func BenchmarkCategoryAppendToDelivery(b *testing.B) {
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			store := eng.open(b)
			if !links.HasIndex(store) {
				b.Skipf("the %s engine keeps no index yet", eng.name)
			}
			appendToDelivery(b, store, func(ctx context.Context) (*subscription.Subscription, error) {
				return subscription.Stream(ctx, store, "$ce-writer", subscription.End, subscription.Options{ResolveLinks: true})
			})
		})
	}
}

// appendToDelivery runs workload W2 on store, 64 writers appending one
// event at a time to their own streams (writer-N) with an exact expected
// version, and receives every event from the subscription subscribe
// opens; see BenchmarkAppendToDelivery for what it reports.
func appendToDelivery(b *testing.B, store *cairn.Store, subscribe func(ctx context.Context) (*subscription.Subscription, error)) {
	const writers = 64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := subscribe(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	total := b.N
	var (
		issued    atomic.Int64
		wg        sync.WaitGroup
		werr      atomic.Value
		committed sync.Map // position → time the append returned
	)
	b.ResetTimer()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprint("writer-", w)
			expected := cairn.NoStream
			data := make([]byte, 8)
			for issued.Add(1) <= int64(total) {
				binary.LittleEndian.PutUint64(data, uint64(time.Now().UnixNano()))
				res, err := store.Append(ctx, stream, expected, cairn.EventData{Type: "Tick", ContentType: cairn.ContentBinary, Data: slices.Clone(data)})
				if err != nil {
					werr.Store(err)
					return
				}
				committed.Store(res.Position, time.Now())
				expected = cairn.Exact(res.Version)
			}
		}()
	}
	lat := make([]time.Duration, 0, total)
	after := make([]time.Duration, 0, total)
	lags := make([]uint64, 0, total)
	for len(lat) < total {
		m, err := sub.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if m.Kind != subscription.KindEvent {
			if e := werr.Load(); e != nil {
				b.Fatal(e)
			}
			continue
		}
		now := time.Now()
		e, _ := m.Parts()
		if e == nil {
			b.Fatalf("a link to a missing event: %+v", m.Event)
		}
		sent := int64(binary.LittleEndian.Uint64(e.Data))
		lat = append(lat, time.Duration(now.UnixNano()-sent))
		var d time.Duration
		if t, ok := committed.LoadAndDelete(e.Position); ok {
			d = now.Sub(t.(time.Time))
		}
		after = append(after, d)
		lags = append(lags, m.Lag)
	}
	b.StopTimer()
	wg.Wait()
	slices.Sort(lat)
	slices.Sort(after)
	slices.Sort(lags)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(after[len(after)/2].Microseconds()), "commit-p50-µs")
	b.ReportMetric(float64(after[len(after)*99/100].Microseconds()), "commit-p99-µs")
	b.ReportMetric(float64(lags[len(lags)/2]), "lag-p50")
	b.ReportMetric(float64(lags[len(lags)*99/100]), "lag-p99")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCatchUp measures how fast a subscription on $all reads history:
// each iteration reads a log of 100,000 events from the start until it has
// caught up.
func BenchmarkCatchUp(b *testing.B) {
	const n = 100_000
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			ctx := context.Background()
			store := eng.open(b)
			batch := make([]cairn.EventData, 1000)
			for i := 0; i < n; i += len(batch) {
				for j := range batch {
					batch[j] = cairn.EventData{Type: "Filled", Data: []byte(`{"amount":42,"currency":"EUR"}`)}
				}
				if _, err := store.Append(ctx, fmt.Sprint("s-", i/len(batch)%100), cairn.Any, batch...); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{BufferSize: 1024})
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for {
					m, err := sub.Next(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if m.Kind == subscription.KindCaughtUp {
						break
					}
					got++
				}
				if got != n {
					b.Fatalf("read %d events, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkPersistentDeliverAck measures a persistent subscription group's
// throughput: four consumers take and ack 100,000 events per iteration, the
// group writing its checkpoint every 100 events.
func BenchmarkPersistentDeliverAck(b *testing.B) {
	const n, consumers = 100_000, 4
	for _, eng := range benchEngines() {
		b.Run(eng.name, func(b *testing.B) {
			ctx := context.Background()
			store := eng.open(b)
			batch := make([]cairn.EventData, 1000)
			for i := 0; i < n; i += len(batch) {
				for j := range batch {
					batch[j] = cairn.EventData{Type: "Filled", Data: []byte(`{"amount":42}`)}
				}
				if _, err := store.Append(ctx, fmt.Sprint("s-", i/len(batch)%100), cairn.Any, batch...); err != nil {
					b.Fatal(err)
				}
			}
			m, err := subscription.NewManager(store, subscription.ManagerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				group := fmt.Sprint("g", i)
				if err := m.Create(ctx, subscription.AllStream, group, subscription.Settings{CheckpointAfter: 100}); err != nil {
					b.Fatal(err)
				}
				var (
					acked atomic.Int64
					wg    sync.WaitGroup
					cs    []*subscription.Consumer
				)
				for range consumers {
					c, err := m.Connect(ctx, subscription.AllStream, group, subscription.ConsumerOptions{InFlight: 64})
					if err != nil {
						b.Fatal(err)
					}
					cs = append(cs, c)
				}
				for _, c := range cs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							d, err := c.Next(ctx)
							if errors.Is(err, subscription.ErrClosed) {
								return
							}
							if err != nil {
								b.Error(err)
								return
							}
							if err := c.Ack(ctx, d.Event.ID); err != nil {
								b.Error(err)
								return
							}
							if acked.Add(1) == n {
								for _, c := range cs {
									c.Close(ctx)
								}
							}
						}
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
