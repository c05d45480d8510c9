package server_test

import (
	"context"
	"testing"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// multiAppend appends events of typ to each stream through the v2
// multi-stream append.
func multiAppend(c *kurrentdb.Client, streams ...string) error {
	_, err := c.MultiStreamAppend(context.Background(), func(yield func(kurrentdb.AppendStreamRequest) bool) {
		for _, s := range streams {
			req := kurrentdb.AppendStreamRequest{StreamName: s, ExpectedStreamState: kurrentdb.Any{},
				Events: func(y func(kurrentdb.EventData) bool) { y(jsonEvent("Entry", `{}`)) }}
			if !yield(req) {
				return
			}
		}
	})
	return err
}

// The v2 appends (the multi-stream append and AppendRecords) write what
// the v1 Append writes, under the same ACLs: system streams for an
// administrator, nothing the ACLs refuse, no standard projection's stream,
// no metadata or settings that do not read.
func TestV2AppendsWriteSystemStreamsUnderACLs(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	version := func(stream string) int64 {
		t.Helper()
		v, err := w.ts.store.StreamVersion(ctx, stream)
		if err != nil {
			return -1
		}
		return v
	}

	// An administrator writes system streams through all three appends.
	if _, err := w.admin.AppendToStream(ctx, "$audit", kurrentdb.AppendToStreamOptions{}, events(1, "Checked")...); err != nil {
		t.Fatalf("v1 append of the admin to $audit: %v", err)
	}
	if err := multiAppend(w.admin, "$audit", "orders"); err != nil {
		t.Fatalf("multi-stream append of the admin to $audit and orders: %v", err)
	}
	if _, err := w.admin.AppendRecords(ctx, []kurrentdb.AppendRecord{record("$audit", "Checked"), record("orders", "Placed")},
		kurrentdb.StreamStateCheck{Stream: "$audit", ExpectedState: kurrentdb.StreamRevision{Value: 1}}); err != nil {
		t.Fatalf("AppendRecords of the admin to $audit: %v", err)
	}
	if v := version("$audit"); v != 2 {
		t.Errorf("$audit is at version %d, want 2", v)
	}

	// Others are refused what the ACLs refuse them, on every append.
	if err := multiAppend(w.bob, "$audit"); !denied(err) {
		t.Errorf("multi-stream append of bob to $audit: %v, want access denied", err)
	}
	if _, err := w.bob.AppendRecords(ctx, []kurrentdb.AppendRecord{record("$audit", "Checked")}); !denied(err) {
		t.Errorf("AppendRecords of bob to $audit: %v, want access denied", err)
	}
	if _, err := w.bob.AppendRecords(ctx, []kurrentdb.AppendRecord{record("ledger", "Entry")}); !denied(err) {
		t.Errorf("AppendRecords of bob to ledger, whose ACL lets only ada write: %v, want access denied", err)
	}
	// A check tells a stream's state: it takes the right to read it.
	checkLedger := kurrentdb.StreamStateCheck{Stream: "ledger", ExpectedState: kurrentdb.StreamExists{}}
	if _, err := w.bob.AppendRecords(ctx, []kurrentdb.AppendRecord{record("bobs", "Entry")}, checkLedger); !denied(err) {
		t.Errorf("AppendRecords of bob checking ledger, which he may not read: %v, want access denied", err)
	}
	if v := version("ledger"); v != 2 {
		t.Errorf("ledger is at version %d after refused appends, want 2", v)
	}
	if ok, _ := w.ts.store.StreamExists(ctx, "bobs"); ok {
		t.Error("a refused AppendRecords wrote bobs")
	}
	if _, err := w.ada.AppendRecords(ctx, []kurrentdb.AppendRecord{record("adas", "Entry")}, checkLedger); err != nil {
		t.Errorf("AppendRecords of ada checking ledger, which she may read: %v", err)
	}

	// Metadata through the multi-stream append is metadata: it must read,
	// and then it is enforced.
	meta := func(stream, data string) error {
		_, err := w.admin.MultiStreamAppend(ctx, func(yield func(kurrentdb.AppendStreamRequest) bool) {
			yield(kurrentdb.AppendStreamRequest{StreamName: stream, ExpectedStreamState: kurrentdb.Any{},
				Events: func(y func(kurrentdb.EventData) bool) { y(jsonEvent("$metadata", data)) }})
		})
		return err
	}
	if err := meta("$$orders", `{"$acl":{"$r":42}}`); status.Code(err) != codes.InvalidArgument {
		t.Errorf("metadata whose ACL does not read, by the multi-stream append: %v, want InvalidArgument", err)
	}
	if err := meta("$settings", `[]`); status.Code(err) != codes.InvalidArgument {
		t.Errorf("settings that do not read, by the multi-stream append: %v, want InvalidArgument", err)
	}
	if err := meta("$$orders", `{"$acl":{"$r":"ada"}}`); err != nil {
		t.Fatalf("metadata by the multi-stream append: %v", err)
	}
	if _, err := drain(w.bob.ReadStream(ctx, "orders", kurrentdb.ReadStreamOptions{}, 10)); !denied(err) {
		t.Errorf("bob reading orders, whose ACL the multi-stream append set to ada: %v, want access denied", err)
	}

	// The standard projections' streams are read from the index: no append
	// writes them.
	if _, err := w.admin.AppendToStream(ctx, "$ce-orders", kurrentdb.AppendToStreamOptions{}, events(1, "Entry")...); err == nil {
		t.Error("v1 append of the admin to $ce-orders succeeded")
	}
	if err := multiAppend(w.admin, "$ce-orders"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("multi-stream append to $ce-orders: %v, want InvalidArgument", err)
	}
	if _, err := w.admin.AppendRecords(ctx, []kurrentdb.AppendRecord{record("$et-Entry", "Entry")}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("AppendRecords to $et-Entry: %v, want InvalidArgument", err)
	}
}
