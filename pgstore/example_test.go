package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
)

// Open an engine on a PostgreSQL database, append to a stream and read the
// global log. The example needs a database (CAIRN_TEST_POSTGRES), so it is
// compiled but not run by go test.
func Example() {
	ctx := context.Background()
	engine, err := pgstore.Open(ctx, os.Getenv("CAIRN_TEST_POSTGRES"), pgstore.Options{Schema: "example"})
	if err != nil {
		log.Fatal(err)
	}
	store := cairn.NewStore(engine, cairn.Options{})
	defer store.Close()

	res, err := store.Append(ctx, "order-42", cairn.Any,
		cairn.EventData{Type: "OrderPlaced", Data: []byte(`{"total":99}`)},
		cairn.EventData{Type: "OrderPaid", Data: []byte(`{}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("order-42 is at version", res.Version)
	for e, err := range store.All(ctx, 0, cairn.Forward) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Position, e.StreamID, e.Version, e.Type)
	}
}

// A projection writes its own table in the transaction of the commit.
func ExampleSQLTx() {
	ctx := context.Background()
	engine, err := pgstore.Open(ctx, os.Getenv("CAIRN_TEST_POSTGRES"), pgstore.Options{Schema: "example"})
	if err != nil {
		log.Fatal(err)
	}
	store := cairn.NewStore(engine, cairn.Options{})
	defer store.Close()
	if _, err := engine.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS example.orders (id text PRIMARY KEY, events int)`); err != nil {
		log.Fatal(err)
	}

	countOrders := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		sqlTx, ok := pgstore.SQLTx(tx)
		if !ok {
			return fmt.Errorf("not a PostgreSQL transaction")
		}
		_, err := sqlTx.Exec(ctx, `INSERT INTO example.orders VALUES ($1, $2)
			ON CONFLICT (id) DO UPDATE SET events = orders.events + excluded.events`,
			events[0].StreamID, len(events))
		return err
	}
	_, err = store.CommitAll(ctx, cairn.AppendRequest{
		Stream:   "order-43",
		Expected: cairn.Any,
		Events:   []cairn.EventData{{Type: "OrderPlaced"}},
	}, countOrders)
	if err != nil {
		log.Fatal(err)
	}
}
