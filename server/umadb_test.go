package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/server"
)

// The server serves UmaDB's umadb.v1 on the same port as the KurrentDB
// protocol and cairn.v1; its events go to the configured stream, and a
// subscription waiting for events ends when the server shuts down.
func TestUmaDB(t *testing.T) {
	ts := start(t, server.Options{UmaDBStream: "dcb-events"})
	ctx := context.Background()
	first := ts.next(t) // after the built-in users
	c := umadbv1.NewDCBClient(ts.conn(t))
	res, err := c.Append(ctx, &umadbv1.AppendRequest{
		Events:    []*umadbv1.Event{{EventType: "AccountRegistered", Tags: []string{"username:ann"}, Data: []byte(`{}`)}},
		Condition: &umadbv1.AppendCondition{FailIfEventsMatch: &umadbv1.Query{Items: []*umadbv1.QueryItem{{Tags: []string{"username:ann"}}}}},
	})
	if err != nil || res.GetPosition() != first+1 {
		t.Fatalf("append = %v, %v; want position %d", res, err, first+1)
	}
	events, err := ts.store.ReadStream(ctx, "dcb-events", 0, 10, cairn.Forward)
	if err != nil || len(events) != 1 || events[0].Type != "AccountRegistered" {
		t.Fatalf("stream dcb-events = %+v, %v", events, err)
	}
	sub, err := c.Read(ctx, &umadbv1.ReadRequest{Subscribe: new(true), Start: new(first + 1)})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sub.Recv(); err != nil || len(m.GetEvents()) != 1 {
		t.Fatalf("subscription history = %v, %v", m, err)
	}
	shut, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(shut) }()
	if _, err := sub.Recv(); err == nil {
		t.Fatal("the subscription went on after shutdown")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
