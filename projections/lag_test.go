package projections_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairndb/cairn/projections"
)

// A running projection that has caught up lags by nothing; a stopped one
// falls behind by the events appended since (positions of the log: its
// own checkpoint, written as it stops, counts too).
func TestLagsCountWhatAProjectionHasNotProcessed(t *testing.T) {
	ctx := context.Background()
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "order-1", "OrderPlaced", `{"n":1}`, `{"n":2}`)
	if _, err := m.Create(ctx, "count", countQuery, projections.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "count", "", `{"count":2}`)
	lagOf := func() (uint64, bool) {
		lags, err := m.Lags(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lags {
			if l.Name == "count" {
				return l.Events, true
			}
		}
		return 0, false
	}
	eventually(t, "the caught-up projection lags by nothing", func() (bool, string) {
		n, ok := lagOf()
		return ok && n == 0, fmt.Sprintf("lag %d, listed %v", n, ok)
	})
	if err := m.Disable(ctx, "count"); err != nil {
		t.Fatal(err)
	}
	stopped, _ := lagOf()
	appendJSON(t, store, "order-2", "OrderPlaced", `{"n":3}`, `{"n":4}`, `{"n":5}`)
	if n, ok := lagOf(); !ok || n != stopped+3 {
		t.Fatalf("the stopped projection lags by %d (listed %v), want the %d at its stop and the 3 events appended since", n, ok, stopped)
	}
}
