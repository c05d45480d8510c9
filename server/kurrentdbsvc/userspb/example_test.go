package userspb_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"

	"github.com/cairndb/cairn/server/kurrentdbsvc/userspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// Creating a user on a cairn server at localhost:2113, as the built-in
// administrator.
func Example() {
	conn, err := grpc.NewClient("localhost:2113", grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(),
		"authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:changeit")))
	_, err = userspb.NewUsersClient(conn).Create(ctx, &userspb.CreateReq{Options: &userspb.CreateReq_Options{
		LoginName: "ada", FullName: "Ada Lovelace", Groups: []string{"accounting"}, Password: "s3cret",
	}})
	fmt.Println(err)
}
