package projections_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/projections"
)

func errorsIsNotFound(err error) bool { return errors.Is(err, cairn.ErrStreamNotFound) }

const countQuery = `
fromAll()
.when({
	$init: function () { return { count: 0 }; },
	$any: function (s, e) { s.count += 1; }
})
.outputState()`

func TestCountingProjectionCountsEveryEvent(t *testing.T) {
	store := newMemStore(t)
	m := newManager(t, store, testOptions())
	appendJSON(t, store, "order-1", "OrderPlaced", `{"n":1}`, `{"n":2}`)
	if _, err := m.Create(context.Background(), "count", countQuery, projections.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "count", "", `{"count":2}`)
	appendJSON(t, store, "order-2", "OrderPlaced", `{"n":3}`)
	waitState(t, m, "count", "", `{"count":3}`)
	st := waitStatus(t, m, "count", "Running")
	if st.Mode != projections.Continuous || st.EventsProcessedAfterRestart != 3 {
		t.Fatalf("statistics: %+v", st)
	}
}
