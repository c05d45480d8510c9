package server_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/users"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// gated is the in-memory engine with appends that wait for a signal, so that
// a test can hold an append in flight.
type gated struct {
	*memstore.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gated) Append(ctx context.Context, stream string, exp cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Store.Append(ctx, stream, exp, events)
}

func TestShutdownFinishesInFlightAppends(t *testing.T) {
	g := &gated{Store: memstore.New(), entered: make(chan struct{}), release: make(chan struct{})}
	store := cairn.NewStore(g, cairn.Options{})
	defer store.Close()
	files := testCerts(t)
	cfg, err := server.LoadTLS(files.NodeCert, files.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), store, server.Options{TLS: cfg, Users: users.Options{Hash: testHash}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	c := connect(t, "kurrentdb://admin:changeit@"+lis.Addr().String()+"?tls=true&tlscafile="+files.CACert)
	ctx := context.Background()

	appended := make(chan error, 1)
	go func() {
		_, err := c.AppendToStream(ctx, "inflight", kurrentdb.AppendToStreamOptions{}, events(2, "E")...)
		appended <- err
	}()
	<-g.entered // the append is in the engine

	stopped := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		stopped <- srv.Shutdown(sctx)
	}()
	// Wait until the server has stopped accepting connections, so that the
	// append is in flight while the shutdown is under way; then release it.
	for {
		conn, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned with an append in flight: %v", err)
	default:
	}
	close(g.release)
	if err := <-appended; err != nil {
		t.Errorf("in-flight append during shutdown: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if v, err := store.StreamVersion(ctx, "inflight"); err != nil || v != 1 {
		t.Errorf("stream after shutdown: version %d, %v; want 1", v, err)
	}
}

func TestShutdownEndsCairnWatch(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	if _, err := ts.store.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	conn := ts.conn(t)
	w, err := cairnv1.NewCairnClient(conn).Watch(ctx, &cairnv1.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatalf("first head: %v", err)
	}
	// Shutdown must end the watch, not wait out its bound for it.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := ts.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown with a cairn.v1 watch open: %v", err)
	}
	for {
		if _, err := w.Recv(); err != nil {
			break
		}
	}
}
