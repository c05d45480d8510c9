package export_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/export"
	"github.com/cairndb/cairn/memstore"
)

// Move a store's events to another engine: export to JSON lines, import.
func Example() {
	ctx := context.Background()
	source := memstore.Open()
	source.Append(ctx, "order-1", cairn.NoStream,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`), Tags: []string{"vip"}},
		cairn.EventData{Type: "OrderPaid", Data: []byte(`{}`)})
	source.Append(ctx, "order-2", cairn.NoStream, cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":7}`)})
	source.DeleteStream(ctx, "order-2", cairn.Any)

	var file bytes.Buffer // an os.File in real use
	written, err := export.Write(ctx, source, &file, export.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("exported %d events of %d streams\n", written.Events, written.Streams)

	target := memstore.Open()
	read, err := export.Import(ctx, target, &file, export.ImportOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("imported %d events of %d streams\n", read.Events, read.Streams)
	v, _ := target.StreamVersion(ctx, "order-1")
	_, err = target.StreamVersion(ctx, "order-2")
	fmt.Println("order-1 at version", v, "/ order-2:", err)
	// Output:
	// exported 3 events of 2 streams
	// imported 3 events of 2 streams
	// order-1 at version 1 / order-2: stream version of "order-2": stream not found
}
