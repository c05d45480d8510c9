package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
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

// cairn.v1 refuses to append to the standard projections' streams ($ce-,
// $et-, $streams, $category-, $bc-), which the server presents as link
// streams read from the index, as the KurrentDB protocol refuses it: with
// the same invalid-argument error, even for an administrator, and nothing
// is written.
func TestCairnV1RefusesProjectionStreams(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	// The system view, as the client's Store refuses '$' streams itself.
	remote := cairn.NewStore(ts.remote(t, "admin", "changeit"), cairn.Options{}).System()
	kurrent := ts.client(t)
	before := ts.next(t)

	refused := func(what string, err error) {
		t.Helper()
		var iae *cairn.InvalidArgumentError
		if !errors.As(err, &iae) || iae.Field != "stream" || !strings.Contains(iae.Reason, "standard projection's stream") {
			t.Errorf("%s: %v, want an InvalidArgumentError for \"stream\" that names a standard projection's stream", what, err)
		}
	}
	for _, stream := range []string{"$ce-orders", "$et-Placed", "$streams", "$category-orders", "$bc-123"} {
		_, err := remote.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "Placed"})
		refused("cairn.v1 append to "+stream, err)
		// The KurrentDB protocol says the same.
		_, kerr := kurrent.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, events(1, "Placed")...)
		if kerr == nil || err == nil || !strings.Contains(kerr.Error(), "code = "+codes.InvalidArgument.String()+" desc = "+err.Error()) {
			t.Errorf("append to %s: KurrentDB says %v, cairn.v1 %v; want the same invalid argument", stream, kerr, err)
		}
		_, err = remote.AppendIf(ctx, stream, cairn.Any, cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Types: []string{"Never"}}}}}, cairn.EventData{Type: "Placed"})
		refused("cairn.v1 conditional append to "+stream, err)
		_, err = remote.AppendBatch(ctx,
			cairn.AppendRequest{Stream: "orders-1", Expected: cairn.Any, Events: []cairn.EventData{{Type: "Placed"}}},
			cairn.AppendRequest{Stream: stream, Expected: cairn.Any, Events: []cairn.EventData{{Type: "Placed"}}})
		refused("cairn.v1 batch append to "+stream, err)
	}
	if next := ts.next(t); next != before {
		t.Errorf("the refused appends wrote %d events", next-before)
	}
	if ok, err := ts.store.StreamExists(ctx, "orders-1"); ok || err != nil {
		t.Errorf("a refused batch wrote its other stream: %v, %v", ok, err)
	}
}
