package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

func TestStreamMetadata(t *testing.T) {
	onEngines(t, server.Options{}, func(t *testing.T, ts *testServer) {
		c := ts.client(t)
		ctx := context.Background()

		none, err := c.GetStreamMetadata(ctx, "acct", kurrentdb.ReadStreamOptions{})
		if err != nil || none.MaxCount() != nil {
			t.Fatalf("metadata of a stream without any: %+v, %v", none, err)
		}
		if _, err := c.AppendToStream(ctx, "acct", kurrentdb.AppendToStreamOptions{}, events(6, "E")...); err != nil {
			t.Fatal(err)
		}

		var m kurrentdb.StreamMetadata
		m.SetMaxCount(3)
		m.AddCustomProperty("owner", "billing")
		if _, err := c.SetStreamMetadata(ctx, "acct", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, m); err != nil {
			t.Fatalf("set metadata: %v", err)
		}
		got, err := c.GetStreamMetadata(ctx, "acct", kurrentdb.ReadStreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.MaxCount() == nil || *got.MaxCount() != 3 || got.CustomProperty("owner") != "billing" {
			t.Errorf("metadata read back: maxCount %v, owner %v", got.MaxCount(), got.CustomProperty("owner"))
		}
		read := func(opts kurrentdb.ReadStreamOptions) []uint64 {
			t.Helper()
			evs, err := drain(c.ReadStream(ctx, "acct", opts, 100))
			if err != nil {
				t.Fatal(err)
			}
			return revisions(evs)
		}
		if r := read(kurrentdb.ReadStreamOptions{}); !equal(r, []uint64{3, 4, 5}) {
			t.Errorf("$maxCount 3, forward: %v, want [3 4 5]", r)
		}
		if r := read(kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}); !equal(r, []uint64{5, 4, 3}) {
			t.Errorf("$maxCount 3, backward: %v, want [5 4 3]", r)
		}

		// The metadata stream has its own revisions, guarded like any other.
		var tb kurrentdb.StreamMetadata
		tb.SetTruncateBefore(5)
		if _, err := c.SetStreamMetadata(ctx, "acct", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.NoStream{}}, tb); errorCode(err) != kurrentdb.ErrorCodeWrongExpectedVersion {
			t.Errorf("metadata with a stale expectation: %v, want ErrorCodeWrongExpectedVersion", err)
		}
		if _, err := c.SetStreamMetadata(ctx, "acct", kurrentdb.AppendToStreamOptions{StreamState: kurrentdb.Revision(0)}, tb); err != nil {
			t.Fatal(err)
		}
		if r := read(kurrentdb.ReadStreamOptions{}); !equal(r, []uint64{5}) {
			t.Errorf("$tb 5: %v, want [5]", r)
		}
		sub, err := c.SubscribeToStream(ctx, "acct", kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if r := revisions(untilCaughtUp(t, sub)); !equal(r, []uint64{5}) {
			t.Errorf("subscription under $tb 5: %v, want [5]", r)
		}

		// Metadata events are in $all, under the metadata stream's name, and
		// a metadata stream only takes JSON objects.
		all, err := ts.store.ReadAll(ctx, 0, 100, cairn.Forward)
		if err != nil {
			t.Fatal(err)
		}
		all = withoutUsers(all)
		if n := len(all); n != 8 || all[6].StreamID != "$$acct" || all[6].Type != "$metadata" {
			t.Errorf("$all holds %d events, the 7th %s/%s", n, all[min(6, n-1)].StreamID, all[min(6, n-1)].Type)
		}
		bad := jsonEvent("$metadata", `[1,2]`)
		if _, err := c.AppendToStream(ctx, "$$acct", kurrentdb.AppendToStreamOptions{}, bad); err == nil {
			t.Error("a metadata event that is not a JSON object was accepted")
		}
	})
}

func TestMetadataAppendReachesAllSubscribers(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.End{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	untilCaughtUp(t, sub)
	var m kurrentdb.StreamMetadata
	m.SetMaxAge(time.Hour)
	if _, err := c.SetStreamMetadata(ctx, "acct", kurrentdb.AppendToStreamOptions{}, m); err != nil {
		t.Fatal(err)
	}
	e, _ := next(t, sub)
	if e.OriginalEvent().StreamID != "$$acct" || e.OriginalEvent().EventType != "$metadata" {
		t.Errorf("live event %s/%s, want $$acct/$metadata", e.OriginalEvent().StreamID, e.OriginalEvent().EventType)
	}
}
