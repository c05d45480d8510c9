package projections_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/projections"
)

// A continuous projection that totals each order and links the large ones
// from a stream of their own.
func Example() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	m, err := projections.NewManager(ctx, store, projections.Options{})
	if err != nil {
		panic(err)
	}
	defer m.Close(ctx)

	_, err = m.Create(ctx, "order-totals", `
		fromCategory('order')
		.foreachStream()
		.when({
			$init: function () { return { total: 0 }; },
			ItemAdded: function (s, e) {
				s.total += e.body.price;
				if (e.body.price >= 100) linkTo('large-items', e);
			}
		})`, projections.CreateOptions{Emit: true})
	if err != nil {
		panic(err)
	}
	for _, price := range []int{20, 150, 5} {
		_, err := store.Append(ctx, "order-1", cairn.Any, cairn.EventData{
			Type: "ItemAdded", Data: fmt.Appendf(nil, `{"price":%d}`, price),
		})
		if err != nil {
			panic(err)
		}
	}

	// The projection runs on its own goroutine: wait for it.
	for {
		state, err := m.State(ctx, "order-totals", "order-1")
		if err != nil {
			panic(err)
		}
		if string(state) == `{"total":175}` {
			fmt.Println("order-1:", string(state))
			break
		}
		time.Sleep(time.Millisecond)
	}
	for {
		links, err := store.ReadStream(ctx, "large-items", 0, 10, cairn.Forward)
		if err == nil && len(links) == 1 {
			fmt.Println(links[0].Type, string(links[0].Data))
			break
		}
		time.Sleep(time.Millisecond)
	}
	st, err := m.Statistics(ctx, "order-totals")
	if err != nil {
		panic(err)
	}
	fmt.Println(st.Status, st.Mode)
	// Output:
	// order-1: {"total":175}
	// $> 1@order-1
	// Running Continuous
}
