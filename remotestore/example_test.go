package remotestore_test

import (
	"context"
	"fmt"
	"net"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/remotestore"
	"google.golang.org/grpc"
)

func Example() {
	// A server over an in-memory store, on a free loopback port.
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	cairnsvc.Register(srv, memstore.Open(), cairnsvc.Options{})
	go srv.Serve(lis)
	defer srv.Stop()

	// The client uses it like any other store.
	b, err := remotestore.Open("cairn://"+lis.Addr().String(), remotestore.Options{})
	if err != nil {
		panic(err)
	}
	store := cairn.NewStore(b, cairn.Options{})
	defer store.Close()
	ctx := context.Background()
	store.Append(ctx, "greetings", cairn.NoStream, cairn.EventData{Type: "Said", Data: []byte(`"hello"`)})
	_, err = store.Append(ctx, "greetings", cairn.NoStream, cairn.EventData{Type: "Said", Data: []byte(`"again"`)})
	fmt.Println(err)
	events, _ := store.ReadStream(ctx, "greetings", 0, 10, cairn.Forward)
	fmt.Println(len(events), events[0].Type, string(events[0].Data))
	// Output:
	// append to "greetings": wrong expected version: expected no stream, actual 0
	// 1 Said "hello"
}
