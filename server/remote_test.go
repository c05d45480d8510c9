package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/users"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cairn.v1 writes system streams as the ACLs allow, as the KurrentDB
// protocol does: administrators by default, and nobody else; what the
// ACLs read must read.
func TestCairnV1WritesSystemStreams(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	// The system views, so that the requests reach the server.
	admin := cairn.NewStore(w.ts.remote(t, "admin", server.DefaultAdminPassword), cairn.Options{}).System()
	bob := cairn.NewStore(w.ts.remote(t, "bob", "bob-pw"), cairn.Options{}).System()
	code := func(err error) codes.Code {
		for ; err != nil; err = errors.Unwrap(err) {
			if s, ok := status.FromError(err); ok {
				return s.Code()
			}
		}
		return codes.OK
	}

	if _, err := admin.Append(ctx, "$audit", cairn.NoStream, cairn.EventData{Type: "Checked", Data: []byte(`{}`)}); err != nil {
		t.Fatalf("the admin appending to $audit over cairn.v1: %v", err)
	}
	if _, err := admin.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "$audit", Expected: cairn.Exact(0), Events: []cairn.EventData{{Type: "Checked"}}},
		cairn.AppendRequest{Stream: "orders", Expected: cairn.Any, Events: []cairn.EventData{{Type: "Placed"}}},
	); err != nil {
		t.Fatalf("the admin's batch with a system stream over cairn.v1: %v", err)
	}
	if _, err := bob.Append(ctx, "$audit", cairn.Any, cairn.EventData{Type: "Checked"}); code(err) != codes.PermissionDenied {
		t.Errorf("bob appending to $audit: %v, want PermissionDenied", err)
	}
	if err := bob.DeleteStream(ctx, "$audit", cairn.Any); code(err) != codes.PermissionDenied {
		t.Errorf("bob deleting $audit: %v, want PermissionDenied", err)
	}
	if _, err := admin.Append(ctx, "$$orders", cairn.Any, cairn.EventData{Type: "$metadata", Data: []byte(`{"$acl":{"$r":42}}`)}); code(err) != codes.InvalidArgument {
		t.Errorf("the admin writing metadata whose ACL does not read: %v, want InvalidArgument", err)
	}
	if _, err := admin.Append(ctx, "$settings", cairn.Any, cairn.EventData{Type: "$settings", Data: []byte(`[]`)}); code(err) != codes.InvalidArgument {
		t.Errorf("the admin writing settings that do not read: %v, want InvalidArgument", err)
	}
	if v, err := w.ts.store.StreamVersion(ctx, "$audit"); err != nil || v != 1 {
		t.Errorf("$audit is at %d, %v; want 1", v, err)
	}
	if err := admin.DeleteStream(ctx, "$audit", cairn.Any); err != nil {
		t.Errorf("the admin deleting $audit over cairn.v1: %v", err)
	}
	c := cairnv1.NewCairnClient(w.ts.conn(t))
	if _, err := c.Append(ctx, &cairnv1.AppendRequest{Stream: "$$ledger", ExpectedVersion: -2,
		Events: []*cairnv1.EventData{{Type: "$metadata", Data: []byte(`{"$acl":{"$r":"bob"}}`)}}}); err != nil {
		t.Errorf("the admin setting ledger's ACL over cairn.v1: %v", err)
	}
	if _, err := bob.ReadStream(ctx, "ledger", 0, 10, cairn.Forward); err != nil {
		t.Errorf("bob reading ledger once its ACL over cairn.v1 lets him: %v", err)
	}
}

// A server whose store is another cairn server (cairn serve --store
// cairn://admin:…@host:port) keeps its users, stream metadata, persistent
// subscriptions and projections in that server's system streams, writing
// them as the administrator its URL names.
func TestServerOverRemoteStore(t *testing.T) {
	back := start(t, server.Options{SystemEvents: true})
	front := startOn(t, back.remote(t, "admin", server.DefaultAdminPassword), server.Options{SystemEvents: true})
	ctx := context.Background()
	c := front.client(t)
	if _, err := c.AppendToStream(ctx, "order-1", kurrentdb.AppendToStreamOptions{}, events(2, "Placed")...); err != nil {
		t.Fatal(err)
	}
	front.createUser(t, "ada", "ada-pw")
	var a kurrentdb.Acl
	a.AddReadRoles("$admins")
	var meta kurrentdb.StreamMetadata
	meta.SetAcl(a)
	if _, err := c.SetStreamMetadata(ctx, "order-1", kurrentdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatalf("setting metadata through the front server: %v", err)
	}
	if _, err := drain(front.clientAs(t, "ada", "ada-pw").ReadStream(ctx, "order-1", kurrentdb.ReadStreamOptions{}, 10)); !denied(err) {
		t.Errorf("ada reading order-1 through the front server: %v, want access denied", err)
	}
	if err := c.CreatePersistentSubscription(ctx, "order-1", "workers", kurrentdb.PersistentStreamSubscriptionOptions{}); err != nil {
		t.Errorf("creating a persistent subscription through the front server: %v", err)
	}
	if err := front.projections(t).Create(ctx, "counter", `fromAll().when({$init: function() { return {n: 0}; }, $any: function(s, e) { s.n++; return s; }})`, kurrentdb.CreateProjectionOptions{}); err != nil {
		t.Errorf("creating a projection through the front server: %v", err)
	}
	if _, err := c.AppendToStream(ctx, "$audit", kurrentdb.AppendToStreamOptions{}, events(1, "Checked")...); err != nil {
		t.Errorf("the admin appending to $audit through the front server: %v", err)
	}
	// It all lands in the back server's store.
	for _, stream := range []string{"$user-ada", "$$order-1", "$audit", "$projections-counter"} {
		if _, err := back.store.StreamVersion(ctx, stream); err != nil {
			t.Errorf("the back server's store has no %s: %v", stream, err)
		}
	}
	// A front server authenticated as a user who may not keep its users
	// there is refused, saying so.
	back.createUser(t, "olga", "olga-pw", "$ops")
	store := cairn.NewStore(back.remote(t, "olga", "olga-pw"), cairn.Options{})
	srv, err := server.New(ctx, store, server.Options{Users: users.Options{Hash: testHash}})
	if err == nil {
		srv.Shutdown(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), `access denied: user "olga" may not read stream "$users"`) {
		t.Errorf("a server over a store it may not administer: %v, want access denied", err)
	}
}
