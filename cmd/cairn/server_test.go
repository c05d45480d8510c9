package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"google.golang.org/grpc"
)

// The commands work against a running server as they do against a store.
func TestCommandsAgainstServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.Open()
	srv := grpc.NewServer()
	cairnsvc.Register(srv, store, cairnsvc.Options{})
	go srv.Serve(lis)
	defer srv.Stop()
	url := "cairn://" + lis.Addr().String()

	run := func(args ...string) string {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append(args, "--server", url))
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	run("append", "order-1", "OrderPlaced", `{"total":42}`, "--expected", "-1")
	run("append", "order-2", "OrderPlaced", `{"total":7}`)
	if got := decodeLines(t, run("read", "order-1")); len(got) != 1 || string(got[0].Data) != `{"total":42}` {
		t.Fatalf("read through the server = %+v", got)
	}
	if out := run("streams"); out != "order-1\norder-2\n" {
		t.Fatalf("streams through the server = %q", out)
	}
	if v, err := store.StreamVersion(context.Background(), "order-2"); err != nil || v != 0 {
		t.Fatalf("the server's store holds order-2 at %d, %v", v, err)
	}
}
