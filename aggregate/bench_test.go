package aggregate_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn/aggregate"
)

// BenchmarkHandle measures one command on one aggregate, on each engine:
// with the cache (a read of the stream's first event and one of the events
// from the cached state on, one commit), without it (a snapshot lookup and a
// read of the events from the snapshot on, one commit), and with parallel
// writers contending for the same aggregate.
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	for _, eng := range engines() {
		b.Run(eng.name, func(b *testing.B) {
			for _, bc := range []struct {
				name string
				opts aggregate.Options
			}{
				{"cached", aggregate.Options{}},
				{"uncached-snapshot-every-100", aggregate.Options{CacheSize: -1, SnapshotEvery: 100}},
			} {
				b.Run(bc.name, func(b *testing.B) {
					store, _ := eng.open(b)
					repo := newRepo(b, store, tallyDef(b), bc.opts)
					id := newID()
					i := 0
					for b.Loop() {
						i++
						if _, err := repo.Handle(ctx, id, add{ID: i, N: 1}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("contended", func(b *testing.B) {
				store, _ := eng.open(b)
				repo := newRepo(b, store, tallyDef(b), contended)
				id := newID()
				b.SetParallelism(4)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := repo.Handle(ctx, id, add{ID: 1, N: 1}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		})
	}
}
