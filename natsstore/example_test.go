package natsstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/natsstore"
)

// A node of a cluster of one: an embedded NATS server, and a node whose
// log has one replica. A real cluster runs three servers routed to each
// other, and three nodes.
func Example() {
	dir, err := os.MkdirTemp("", "natsstore-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	srv, err := natsstore.StartServer(natsstore.ServerOptions{Dir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown()

	ctx := context.Background()
	db, err := natsstore.Open(ctx, natsstore.Options{Dir: filepath.Join(dir, "node"), URL: srv.ClientURL(), Replicas: 1})
	if err != nil {
		panic(err)
	}
	store := cairn.NewStore(db, cairn.Options{})
	defer store.Close()

	res, err := store.Append(ctx, "order-1", cairn.NoStream, cairn.EventData{Type: "Placed", Data: []byte(`{}`)})
	if err != nil {
		panic(err)
	}
	fmt.Println("version", res.Version, "position", res.Position)
	// Output: version 0 position 0
}
