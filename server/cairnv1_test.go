package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
)

// The server serves cairn.v1 on the same port as the KurrentDB protocol,
// behind the same authentication.
func TestCairnV1(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()

	remote := cairn.NewStore(ts.remote(t, "admin", "changeit"), cairn.Options{})
	defer remote.Close()
	if _, err := remote.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E", Tags: []string{"t"}}); err != nil {
		t.Fatal(err)
	}
	if err := remote.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: 0, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	events, err := ts.store.ReadStream(ctx, "s", 0, 10, cairn.Forward)
	if err != nil || len(events) != 1 || events[0].Tags[0] != "t" {
		t.Fatalf("server store holds %+v, %v", events, err)
	}

	bad := ts.remote(t, "admin", "wrong")
	if _, err := bad.HasEvents(ctx); err == nil || errors.Is(err, cairn.ErrStreamNotFound) {
		t.Fatalf("cairn.v1 with a wrong password: %v, want refused", err)
	}
}
