package remotestore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/remotestore"
	"github.com/cairndb/cairn/storetest"
	"google.golang.org/grpc"
)

// serve starts a cairn.v1 server over a fresh in-memory store and returns
// its address and the server-side Store.
func serve(t *testing.T) (string, *cairn.Store) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.Open()
	srv := grpc.NewServer()
	cairnsvc.Register(srv, store, cairnsvc.Options{})
	go srv.Serve(lis)
	t.Cleanup(func() {
		srv.Stop()
		store.Close()
	})
	return lis.Addr().String(), store
}

func dial(t *testing.T, addr string) *remotestore.Store {
	t.Helper()
	b, err := remotestore.Open("cairn://"+addr, remotestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		addr, _ := serve(t)
		return dial(t, addr)
	})
}

// Appends by one client wake another client's Store, through the server.
func TestWatch(t *testing.T) {
	addr, _ := serve(t)
	writer := cairn.NewStore(dial(t, addr), cairn.Options{})
	reader := cairn.NewStore(dial(t, addr), cairn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 3 {
		changed := reader.Changes()
		res, err := writer.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if head, ok := reader.Head(); ok && head >= res.Position {
				break
			}
			select {
			case <-changed:
				changed = reader.Changes()
			case <-ctx.Done():
				t.Fatalf("append %d at position %d never reached the other client", i, res.Position)
			}
		}
	}
}

func TestOpenURL(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"http://localhost:2113", `unknown scheme "http"`},
		{"cairn://", "no host"},
		{"cairn://localhost:2113?tls=maybe", `tls="maybe" is not true or false`},
		{"cairn://localhost:2113?color=blue", `unknown parameter "color"`},
		{"cairn://localhost:2113?tls=true&tlscafile=/nonexistent/ca.crt", "tlscafile"},
		// KurrentDB's spelling: parameter names in any case.
		{"cairn://localhost:2113?TLS=maybe", `tls="maybe" is not true or false`},
		{"kurrentdb://localhost:2113?tls=true&tlsCAFile=/nonexistent/ca.crt", "tlscafile: open /nonexistent/ca.crt"},
	} {
		_, err := remotestore.Open(c.url, remotestore.Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%q): %v, want an error containing %q", c.url, err, c.want)
		}
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := lis.Addr().String()
	lis.Close()
	s := cairn.NewStore(dial(t, addr), cairn.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"})
	if err == nil || errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("append to an unreachable server: %v", err)
	}
	if s.Health(ctx) == nil {
		t.Fatal("an unreachable server reports healthy")
	}
}
