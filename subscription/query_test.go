package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

// A subscription by query delivers the matching events of the history,
// reports caught up after the last event of the log, then delivers the
// matching events appended live, each once and in order, while writers
// append matching and other events concurrently.
func TestQuerySubscriptionCatchUpThenLive(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			ctx := deadline(t)
			s := eng.open(t).store
			q := cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"course:1"}}, {Types: []string{"CourseClosed"}}}}
			var want []uint64
			for i := range 30 {
				tags := []string{"course:2"}
				if i%3 == 0 {
					tags = []string{"course:1", "student:x"}
				}
				res := mustAppend(t, s, fmt.Sprint("s-", i%4), ev("Subscribed", tags...))
				if i%3 == 0 {
					want = append(want, res.Position)
				}
			}
			mustAppend(t, s, "noise", ev("Other")) // the last event of the log matches nothing
			sub, err := subscription.Query(ctx, s, q, subscription.Start, subscription.Options{BufferSize: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var got []uint64
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if m.Kind == subscription.KindCaughtUp {
					if m.Position != 31 {
						t.Fatalf("caught up at %d, want 31, after the last event of the log", m.Position)
					}
					break
				}
				if m.Kind == subscription.KindEvent {
					got = append(got, m.Position)
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("history delivered %v, want %v", got, want)
			}
			// Live: 3 writers, matching events among others.
			var wg sync.WaitGroup
			var mu sync.Mutex
			for w := range 3 {
				wg.Go(func() {
					for i := range 20 {
						e := ev("Subscribed", "course:2")
						if i%2 == 0 {
							e = ev("CourseClosed")
						}
						res, err := s.Append(context.Background(), fmt.Sprint("w-", w), cairn.Any, e)
						if err != nil {
							t.Error(err)
							return
						}
						if i%2 == 0 {
							mu.Lock()
							want = append(want, res.Position)
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			slices.Sort(want)
			for len(got) < len(want) {
				got = append(got, nextEvent(t, ctx, sub).Position)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("delivered %v, want %v", got, want)
			}
		})
	}
}

func TestQuerySubscriptionRefusesBadQuery(t *testing.T) {
	s := memstore.Open()
	defer s.Close()
	_, err := subscription.Query(context.Background(), s, cairn.Query{Items: []cairn.QueryItem{{Tags: []string{""}}}}, subscription.Start, subscription.Options{})
	if !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("a query with an empty tag: %v, want ErrInvalidArgument", err)
	}
}
