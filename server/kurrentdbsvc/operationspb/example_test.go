package operationspb_test

import (
	"context"
	"fmt"

	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Starting a scavenge on a cairn server at localhost:2113.
func Example() {
	conn, err := grpc.NewClient("localhost:2113", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	resp, err := operationspb.NewOperationsClient(conn).StartScavenge(context.Background(), &operationspb.StartScavengeReq{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.GetScavengeId(), resp.GetScavengeResult())
}
