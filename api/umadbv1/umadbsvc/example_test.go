package umadbsvc_test

import (
	"context"
	"fmt"
	"net"

	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/api/umadbv1/umadbsvc"
	"github.com/cairndb/cairn/memstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// An UmaDB client appends a course's definition on the condition that the
// course does not exist yet, against a cairn store.
func Example() {
	store := memstore.Open()
	defer store.Close()
	srv := grpc.NewServer()
	if err := umadbsvc.Register(srv, store, umadbsvc.Options{}); err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := umadbv1.NewDCBClient(conn)

	course := &umadbv1.Query{Items: []*umadbv1.QueryItem{{Types: []string{"CourseDefined"}, Tags: []string{"course:c1"}}}}
	define := &umadbv1.AppendRequest{
		Events:    []*umadbv1.Event{{EventType: "CourseDefined", Tags: []string{"course:c1"}, Data: []byte(`{"capacity":10}`)}},
		Condition: &umadbv1.AppendCondition{FailIfEventsMatch: course},
	}
	res, err := client.Append(context.Background(), define)
	fmt.Println(res.GetPosition(), err)
	_, err = client.Append(context.Background(), define)
	fmt.Println(err != nil)
	// Output:
	// 1 <nil>
	// true
}
