package subscription_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

func Example() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced"})
	store.Append(ctx, "user-7", cairn.NoStream, cairn.EventData{Type: "UserRenamed"})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := subscription.All(ctx, store, subscription.Start, subscription.Options{
		Filter: subscription.Filter{StreamPrefixes: []string{"order-"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sub.Close()
	for m, err := range sub.Messages(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		switch m.Kind {
		case subscription.KindEvent:
			fmt.Println(m.Event.StreamID, m.Event.Version, m.Event.Type)
		case subscription.KindCaughtUp:
			fmt.Println("caught up")
			// A live event, delivered as soon as it is durable.
			store.Append(ctx, "order-1", cairn.Exact(0), cairn.EventData{Type: "OrderShipped"})
		}
		if m.Event.Type == "OrderShipped" {
			return
		}
	}
	// Output:
	// order-1 0 OrderPlaced
	// caught up
	// order-1 1 OrderShipped
}

func ExampleManager() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced"})
	store.Append(ctx, "order-1", cairn.Exact(0), cairn.EventData{Type: "OrderShipped"})

	m, err := subscription.NewManager(store, subscription.ManagerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(ctx)
	if err := m.Create(ctx, "order-1", "mailer", subscription.Settings{}); err != nil {
		fmt.Println(err)
		return
	}
	c, err := m.Connect(ctx, "order-1", "mailer", subscription.ConsumerOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ctx)
	for d, err := range c.Deliveries(ctx) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(d.Event.Version, d.Event.Type)
		if err := c.Ack(ctx, d.Event.ID); err != nil {
			fmt.Println(err)
			return
		}
		if d.Event.Type == "OrderShipped" {
			break
		}
	}
	info, _ := m.Info(ctx, "order-1", "mailer")
	fmt.Println("processed up to version", info.Processed)
	// Output:
	// 0 OrderPlaced
	// 1 OrderShipped
	// processed up to version 2
}
