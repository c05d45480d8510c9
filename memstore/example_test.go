package memstore_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()

	store.Append(ctx, "cart-1", cairn.NoStream, cairn.EventData{Type: "ItemAdded", Data: []byte(`{"sku":"A1"}`)})
	store.Append(ctx, "cart-2", cairn.NoStream, cairn.EventData{Type: "ItemAdded", Data: []byte(`{"sku":"B2"}`)})

	events, _ := store.ReadAll(ctx, 0, 10, cairn.Forward)
	for _, e := range events {
		fmt.Println(e.Position, e.StreamID, e.Type)
	}
	// Output:
	// 0 cart-1 ItemAdded
	// 1 cart-2 ItemAdded
}
