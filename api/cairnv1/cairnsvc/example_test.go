package cairnsvc_test

import (
	"context"
	"fmt"
	"net"

	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func Example() {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	cairnsvc.Register(srv, memstore.Open(), cairnsvc.Options{})
	go srv.Serve(lis)
	defer srv.Stop()

	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := cairnv1.NewCairnClient(conn)
	ctx := context.Background()
	res, err := client.Append(ctx, &cairnv1.AppendRequest{
		Stream:          "s",
		ExpectedVersion: -1, // no stream
		Events:          []*cairnv1.EventData{{Type: "Created", Tags: []string{"tenant:1"}}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("version", res.GetVersion(), "position", res.GetPosition())
	// Errors carry their facts in the status details.
	_, err = client.Append(ctx, &cairnv1.AppendRequest{Stream: "s", ExpectedVersion: -1, Events: []*cairnv1.EventData{{Type: "Created"}}})
	fmt.Println(cairnv1.FromStatus(err))
	// Output:
	// version 0 position 0
	// append to "s": wrong expected version: expected no stream, actual 0
}

func ExampleService_DeleteStream() {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	cairnsvc.Register(srv, memstore.Open(), cairnsvc.Options{})
	go srv.Serve(lis)
	defer srv.Stop()
	conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	client := cairnv1.NewCairnClient(conn)
	ctx := context.Background()
	client.Append(ctx, &cairnv1.AppendRequest{Stream: "s", ExpectedVersion: -2, Events: []*cairnv1.EventData{{Type: "A"}, {Type: "B"}}})

	// Without an expected version a delete expects any.
	exact := int64(0)
	_, err := client.DeleteStream(ctx, &cairnv1.DeleteStreamRequest{Stream: "s", ExpectedVersion: &exact})
	fmt.Println(cairnv1.FromStatus(err))
	_, err = client.DeleteStream(ctx, &cairnv1.DeleteStreamRequest{Stream: "s"})
	fmt.Println(err)
	// Output:
	// delete "s": wrong expected version: expected 0, actual 1
	// <nil>
}
