package projections_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/projections"
)

// engine opens a store; reopen closes the one it is given and opens the
// same data again, as a restart of the process would.
type engine struct {
	name string
	open func(t *testing.T) (store *cairn.Store, reopen func(old *cairn.Store) *cairn.Store)
}

func engines() []engine {
	return []engine{
		{"memory", func(t *testing.T) (*cairn.Store, func(*cairn.Store) *cairn.Store) {
			b := memstore.New()
			t.Cleanup(func() { b.Close() })
			return cairn.NewStore(b, cairn.Options{}), func(*cairn.Store) *cairn.Store { return cairn.NewStore(b, cairn.Options{}) }
		}},
		{"disk", func(t *testing.T) (*cairn.Store, func(*cairn.Store) *cairn.Store) {
			dir := t.TempDir()
			open := func() *cairn.Store {
				db, err := diskstore.Open(dir, diskstore.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				s := cairn.NewStore(db, cairn.Options{})
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), func(old *cairn.Store) *cairn.Store {
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
				return open()
			}
		}},
		{"postgres", func(t *testing.T) (*cairn.Store, func(*cairn.Store) *cairn.Store) {
			url, schema := pgtest.URL(t), pgtest.Schema(t, "cairn_proj_test")
			open := func() *cairn.Store {
				pg, err := pgstore.Open(context.Background(), url, pgstore.Options{Schema: schema})
				if err != nil {
					t.Fatal(err)
				}
				s := cairn.NewStore(pg, cairn.Options{})
				t.Cleanup(func() { s.Close() })
				return s
			}
			return open(), func(old *cairn.Store) *cairn.Store {
				if err := old.Close(); err != nil {
					t.Fatal(err)
				}
				return open()
			}
		}},
	}
}

// TestOnEveryEngine runs projections that count, partition, emit and link
// on every engine, restarts the store and the Manager, and checks that they
// resume from their checkpoints without emitting anything twice.
func TestOnEveryEngine(t *testing.T) {
	for _, e := range engines() {
		t.Run(e.name, func(t *testing.T) {
			store, reopen := e.open(t)
			ctx := context.Background()
			m, err := projections.NewManager(ctx, store, testOptions())
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				appendJSON(t, store, fmt.Sprintf("order-%d", i), "OrderPlaced", fmt.Sprintf(`{"amount":%d}`, 10*(i+1)))
			}
			create(t, m, "count", countQuery, projections.CreateOptions{})
			create(t, m, "per-order", `
				fromCategory('order').foreachStream().when({
					$init: function () { return { total: 0 }; },
					OrderPlaced: function (s, e) { s.total += e.body.amount; }
				}).outputState()`, projections.CreateOptions{})
			create(t, m, "router", `
				fromCategory('order').when({
					OrderPlaced: function (s, e) {
						emit('amounts', 'Amount', { amount: e.body.amount });
						linkTo('order-links', e);
					}
				})`, projections.CreateOptions{Emit: true})
			waitState(t, m, "per-order", "order-2", `{"total":30}`)
			eventually(t, "emitted", func() (bool, string) {
				return len(readStream(t, store, "amounts")) == 3 && len(readStream(t, store, "order-links")) == 3, ""
			})
			// count reads $all, the router's amounts included: 3 orders
			// and 3 amounts, whichever of the two projections ran first.
			waitState(t, m, "count", "", `{"count":6}`)
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}

			store = reopen(store)
			appendJSON(t, store, "order-1", "OrderPlaced", `{"amount":5}`)
			m = newManager(t, store, testOptions())
			// 4 orders and 4 amounts; fromAll leaves out links unless
			// the query asks for them with $includeLinks.
			waitState(t, m, "count", "", `{"count":8}`)
			waitState(t, m, "per-order", "order-1", `{"total":25}`)
			waitState(t, m, "per-order", "order-0", `{"total":10}`)
			eventually(t, "emitted after the restart", func() (bool, string) {
				a, l := readStream(t, store, "amounts"), readStream(t, store, "order-links")
				return len(a) == 4 && len(l) == 4, fmt.Sprintf("%d amounts, %d links", len(a), len(l))
			})
			links := readStream(t, store, "order-links")
			for i, want := range []string{"0@order-0", "0@order-1", "0@order-2", "1@order-1"} {
				if got := string(links[i].Data); got != want || links[i].Type != "$>" {
					t.Errorf("link %d: %s %q, want $> %q", i, links[i].Type, got, want)
				}
			}
			st := waitStatus(t, m, "router", "Running")
			if st.EventsProcessedAfterRestart != 1 {
				t.Errorf("router processed %d events after the restart, want 1", st.EventsProcessedAfterRestart)
			}
		})
	}
}
