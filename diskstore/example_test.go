package diskstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
)

func Example() {
	dir, err := os.MkdirTemp("", "cairn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	ctx := context.Background()

	// The append returns once the events are on disk.
	res, err := store.Append(ctx, "order-1", cairn.NoStream,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":42}`)},
		cairn.EventData{Type: "OrderPaid", Data: []byte(`{"amount":42}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended up to version", res.Version, "at position", res.Position)

	// A writer that read an older version is told so.
	_, err = store.Append(ctx, "order-1", cairn.Exact(0), cairn.EventData{Type: "OrderCancelled"})
	fmt.Println(err)

	for e, err := range store.Stream(ctx, "order-1", 0, cairn.Forward) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// appended up to version 1 at position 1
	// append to "order-1": wrong expected version: expected 0, actual 1
	// 0 OrderPlaced {"total":42}
	// 1 OrderPaid {"amount":42}
}

// Concurrent appends share groups and syncs of the log: the counts say how
// many shared each.
func ExampleDB_CommitStats() {
	dir, err := os.MkdirTemp("", "cairn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := diskstore.Open(dir, diskstore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()
	ctx := context.Background()

	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for range 10 {
				if _, err := store.Append(ctx, fmt.Sprint("writer-", w), cairn.Any, cairn.EventData{Type: "Done"}); err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	st, err := store.CommitStats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.Writes, "appends")
	fmt.Println("shared groups:", st.Groups < st.Writes, "– shared syncs:", st.Syncs <= st.Groups)
	// Output:
	// 160 appends
	// shared groups: true – shared syncs: true
}
