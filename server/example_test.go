package server_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// Serve an in-memory store on a loopback port over TLS and use it with the
// official KurrentDB Go client, as the built-in admin (whose password, on a
// new store, is "changeit"). The Go client sends credentials only over
// TLS, and the server refuses a request without them.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "cairn-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	certs, err := server.GenerateCerts(dir, server.CertOptions{})
	if err != nil {
		log.Fatal(err)
	}
	tlsConfig, err := server.LoadTLS(certs.NodeCert, certs.NodeKey)
	if err != nil {
		log.Fatal(err)
	}

	metrics := server.NewMetrics()
	store := cairn.NewStore(memstore.New(), cairn.Options{Hooks: metrics.Hooks()})
	defer store.Close()
	srv, err := server.New(ctx, store, server.Options{Metrics: metrics, TLS: tlsConfig})
	if err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(ctx)

	cfg, err := kurrentdb.ParseConnectionString("kurrentdb://admin:changeit@" + lis.Addr().String() + "?tls=true&tlscafile=" + certs.CACert)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	client, err := kurrentdb.NewClient(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	_, err = client.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}},
		kurrentdb.EventData{EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{"total":42}`)})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}},
		kurrentdb.EventData{EventType: "OrderPlaced", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)})
	fmt.Println("second no-stream append:", err != nil)

	events, err := store.ReadStream(ctx, "order-1", 0, 10, cairn.Forward)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e.StreamID, e.Version, e.Type, string(e.Data))
	}
	// Output:
	// second no-stream append: true
	// order-1 0 OrderPlaced {"total":42}
}
