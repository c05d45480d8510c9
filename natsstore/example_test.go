package natsstore_test

import (
	"context"
	"errors"
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

// A tool that looks after a cluster reads its registry without being a
// node: which nodes there are, and how far each applied the log.
func ExampleOpenRegistry() {
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
	db, err := natsstore.Open(ctx, natsstore.Options{Dir: filepath.Join(dir, "node"), URL: srv.ClientURL(), Replicas: 1, NodeID: "n1"})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Append(ctx, "order-1", cairn.NoStream, []cairn.EventData{{Type: "Placed", Data: []byte(`{}`)}}); err != nil {
		panic(err)
	}

	reg, err := natsstore.OpenRegistry(ctx, natsstore.Options{URL: srv.ClientURL()})
	if err != nil {
		panic(err)
	}
	defer reg.Close()
	log, err := reg.Log(ctx)
	if err != nil {
		panic(err)
	}
	nodes, err := reg.Nodes(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("log records", log.First, "to", log.Last)
	for _, n := range nodes {
		fmt.Println(n.ID, "alive:", n.Alive)
	}
	// Forgetting a node that is alive is refused.
	fmt.Println(errors.Is(reg.Forget(ctx, "n1"), natsstore.ErrNodeAlive))
	// Output:
	// log records 1 to 1
	// n1 alive: true
	// true
}
