package kurrentdbsvc_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc"
)

// Register the KurrentDB services on a gRPC server of one's own and use
// them with the official KurrentDB Go client. Package server does this,
// with TLS, authentication and metrics around it.
func Example() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	srv := grpc.NewServer()
	kurrentdbsvc.New(kurrentdbsvc.Host{Store: store}, kurrentdbsvc.Options{}).Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	cfg, err := kurrentdb.ParseConnectionString("kurrentdb://" + lis.Addr().String() + "?tls=false")
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
	stream, err := client.ReadStream(ctx, "order-1", kurrentdb.ReadStreamOptions{}, 10)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	e, err := stream.Recv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Event.StreamID, e.Event.EventNumber, e.Event.EventType, string(e.Event.Data))
	// Output:
	// order-1 0 OrderPlaced {"total":42}
}
