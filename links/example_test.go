package links_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/memstore"
)

// Read a stream of links that an application wrote, resolving them: a
// link to an event that is gone comes alone.
func Example() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	store.Append(ctx, "order-1", cairn.NoStream,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`)},
		cairn.EventData{Type: "OrderShipped", Data: []byte(`{}`)})
	store.Append(ctx, "vip-orders", cairn.NoStream,
		cairn.EventData{Type: links.LinkType, ContentType: cairn.ContentBinary, Data: links.Data("order-1", 0)},
		cairn.EventData{Type: links.LinkType, ContentType: cairn.ContentBinary, Data: links.Data("order-1", 7)})

	r := links.NewReader(store, links.Options{})
	page, err := r.ReadStream(ctx, "vip-orders", 0, 10, 0, cairn.Forward, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range page.Events {
		event, link := e.Parts()
		if event == nil {
			fmt.Printf("%s %d: %s -> gone\n", link.StreamID, link.Version, link.Data)
			continue
		}
		fmt.Printf("%s %d: %s -> %s %s\n", link.StreamID, link.Version, link.Data, event.Type, event.Data)
	}
	// Output:
	// vip-orders 0: 0@order-1 -> OrderPlaced {"total":42}
	// vip-orders 1: 7@order-1 -> gone
}

// Read the category stream $ce-order, resolving its links to the events
// of order-1 and order-2. The engine keeps the index that serves it.
func ExampleReader_ReadStream() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`)})
	store.Append(ctx, "order-2", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":7}`)})
	store.Append(ctx, "order-1", cairn.Exact(0), cairn.EventData{Type: "OrderShipped", Data: []byte(`{}`)})

	r := links.NewReader(store, links.Options{})
	page, err := r.ReadStream(ctx, "$ce-order", 0, 10, 0, cairn.Forward, true)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range page.Events {
		event, link := e.Parts()
		fmt.Printf("%s %d: %s -> %s %s\n", link.StreamID, link.Version, link.Data, event.Type, event.Data)
	}
	// Output:
	// $ce-order 0: 0@order-1 -> OrderPlaced {"total":42}
	// $ce-order 1: 0@order-2 -> OrderPlaced {"total":7}
	// $ce-order 2: 1@order-1 -> OrderShipped {}
}
