package remote_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/storeurl"
	_ "github.com/cairndb/cairn/storeurl/remote"
	"google.golang.org/grpc"
)

// A cairn:// URL reaches the server's store.
func TestOpen(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := memstore.Open()
	srv := grpc.NewServer()
	cairnsvc.Register(srv, served, cairnsvc.Options{})
	go srv.Serve(lis)
	defer func() {
		srv.Stop()
		served.Close()
	}()
	ctx := context.Background()
	s, err := storeurl.Open(ctx, "cairn://"+lis.Addr().String(), storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.Backend().(*remotestore.Store); !ok {
		t.Fatalf("storeurl opened %T", s.Backend())
	}
	if _, err := s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if v, err := served.StreamVersion(ctx, "s"); err != nil || v != 0 {
		t.Fatalf("the server's stream version = %d, %v; want 0", v, err)
	}
}

// An error about a URL never repeats its password.
func TestErrorHidesPassword(t *testing.T) {
	_, err := storeurl.Open(context.Background(), "cairn://u:s3cret@host:1?tls=maybe", storeurl.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}

func Example() {
	ctx := context.Background()
	store, err := storeurl.Open(ctx, "cairn://admin:changeit@localhost:2113?tls=true", storeurl.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println(store.Backend().(*remotestore.Store) != nil)
}
