package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/kurrentdbsvc/operationspb"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// aclWorld is a server with three users besides admin and ops: ada (in
// accounting), bob (in nothing), olga (in $ops); and a stream "ledger"
// whose ACL lets accounting read it and only ada do the rest.
type aclWorld struct {
	ts                   *testServer
	admin, ada, bob, ops *kurrentdb.Client
}

func newACLWorld(t *testing.T) aclWorld {
	t.Helper()
	ts := start(t, server.Options{})
	ts.createUser(t, "ada", "ada-pw", "accounting")
	ts.createUser(t, "bob", "bob-pw")
	ts.createUser(t, "olga", "olga-pw", "$ops")
	w := aclWorld{ts: ts, admin: ts.client(t), ada: ts.clientAs(t, "ada", "ada-pw"), bob: ts.clientAs(t, "bob", "bob-pw"), ops: ts.clientAs(t, "olga", "olga-pw")}
	ctx := context.Background()
	for _, s := range []string{"ledger", "vault"} {
		if _, err := w.admin.AppendToStream(ctx, s, kurrentdb.AppendToStreamOptions{}, events(3, "Entry")...); err != nil {
			t.Fatal(err)
		}
		var a kurrentdb.Acl
		a.AddReadRoles("accounting")
		a.AddWriteRoles("ada")
		a.AddDeleteRoles("ada")
		a.AddMetaReadRoles("ada")
		a.AddMetaWriteRoles("ada")
		var meta kurrentdb.StreamMetadata
		meta.SetAcl(a)
		if _, err := w.admin.SetStreamMetadata(ctx, s, kurrentdb.AppendToStreamOptions{}, meta); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func denied(err error) bool { return errorCode(err) == kurrentdb.ErrorCodeAccessDenied }

// Each kind of call, as a user the ACL refuses (bob) and one it grants
// (ada), through the official Go client.
func TestACLOnEveryCall(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	read := func(c *kurrentdb.Client, stream string) error {
		_, err := drain(c.ReadStream(ctx, stream, kurrentdb.ReadStreamOptions{}, 100))
		return err
	}
	appendTo := func(c *kurrentdb.Client, stream string) error {
		_, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, events(1, "Entry")...)
		return err
	}
	subscribe := func(c *kurrentdb.Client, stream string) error {
		sub, err := c.SubscribeToStream(ctx, stream, kurrentdb.SubscribeToStreamOptions{From: kurrentdb.Start{}})
		if err != nil {
			return err
		}
		defer sub.Close()
		return nil
	}
	calls := []struct {
		name string
		call func(c *kurrentdb.Client) error
	}{
		{"read", func(c *kurrentdb.Client) error { return read(c, "ledger") }},
		{"append", func(c *kurrentdb.Client) error { return appendTo(c, "ledger") }},
		{"get metadata", func(c *kurrentdb.Client) error {
			_, err := c.GetStreamMetadata(ctx, "ledger", kurrentdb.ReadStreamOptions{})
			return err
		}},
		{"set metadata", func(c *kurrentdb.Client) error {
			meta, err := w.admin.GetStreamMetadata(ctx, "ledger", kurrentdb.ReadStreamOptions{})
			if err != nil {
				return err
			}
			meta.AddCustomProperty("touched", true)
			_, err = c.SetStreamMetadata(ctx, "ledger", kurrentdb.AppendToStreamOptions{}, *meta)
			return err
		}},
		{"subscribe", func(c *kurrentdb.Client) error { return subscribe(c, "ledger") }},
		{"multi-stream append", func(c *kurrentdb.Client) error {
			_, err := c.MultiStreamAppend(ctx, func(yield func(kurrentdb.AppendStreamRequest) bool) {
				yield(kurrentdb.AppendStreamRequest{StreamName: "ledger", Events: func(y func(kurrentdb.EventData) bool) { y(jsonEvent("Entry", `{}`)) }, ExpectedStreamState: kurrentdb.Any{}})
			})
			return err
		}},
		{"delete", func(c *kurrentdb.Client) error {
			_, err := c.DeleteStream(ctx, "vault", kurrentdb.DeleteStreamOptions{})
			return err
		}},
		{"tombstone", func(c *kurrentdb.Client) error {
			_, err := c.TombstoneStream(ctx, "vault", kurrentdb.TombstoneStreamOptions{})
			return err
		}},
	}
	before, err := w.ts.store.StreamVersion(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if err := c.call(w.bob); !denied(err) {
			t.Errorf("%s as bob: %v, want ErrorCodeAccessDenied", c.name, err)
		}
	}
	if v, _ := w.ts.store.StreamVersion(ctx, "ledger"); v != before {
		t.Errorf("bob's refused calls wrote to ledger: version %d, was %d", v, before)
	}
	if v, err := w.ts.store.StreamVersion(ctx, "vault"); err != nil || v != 2 {
		t.Errorf("bob's refused deletes touched vault: version %d, %v", v, err)
	}
	for _, c := range calls {
		if err := c.call(w.ada); err != nil {
			t.Errorf("%s as ada: %v", c.name, err)
		}
	}
	// The admin needs no ACL; no one writes $all.
	if err := read(w.admin, "ledger"); err != nil {
		t.Errorf("the admin reading ledger: %v", err)
	}
	if err := appendTo(w.admin, "$all"); err == nil {
		t.Error("the admin appended to $all")
	}
	// System streams are the admins'.
	if err := read(w.bob, "$users"); !denied(err) {
		t.Errorf("bob reading $users: %v, want ErrorCodeAccessDenied", err)
	}
	if err := read(w.ops, "$users"); !denied(err) {
		t.Errorf("an operator reading $users: %v, want ErrorCodeAccessDenied", err)
	}
	if err := read(w.admin, "$users"); err != nil {
		t.Errorf("the admin reading $users: %v", err)
	}
	// A user stream without an ACL is everyone's, by default.
	if err := appendTo(w.bob, "bobs-own"); err != nil {
		t.Errorf("bob appending to a stream without an ACL: %v", err)
	}
}

// $all is read with the right to read $all: administrators by default,
// whoever the metadata of $all grants; filtered or not, read or
// subscription.
func TestACLOnAll(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	readAll := func(c *kurrentdb.Client) error {
		_, err := drain(c.ReadAll(ctx, kurrentdb.ReadAllOptions{}, 10))
		return err
	}
	subscribeAll := func(c *kurrentdb.Client, filter *kurrentdb.SubscriptionFilter) error {
		sub, err := c.SubscribeToAll(ctx, kurrentdb.SubscribeToAllOptions{From: kurrentdb.Start{}, Filter: filter})
		if err != nil {
			return err
		}
		defer sub.Close()
		return nil
	}
	filter := &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{"ledger"}}
	for name, c := range map[string]*kurrentdb.Client{"ada": w.ada, "bob": w.bob, "ops": w.ops} {
		if err := readAll(c); !denied(err) {
			t.Errorf("%s reading $all: %v, want ErrorCodeAccessDenied", name, err)
		}
		if err := subscribeAll(c, nil); !denied(err) {
			t.Errorf("%s subscribing to $all: %v, want ErrorCodeAccessDenied", name, err)
		}
		if err := subscribeAll(c, filter); !denied(err) {
			t.Errorf("%s subscribing to $all with a filter: %v, want ErrorCodeAccessDenied", name, err)
		}
	}
	if err := readAll(w.admin); err != nil {
		t.Errorf("the admin reading $all: %v", err)
	}

	// The admin grants ada the right to read $all.
	var a kurrentdb.Acl
	a.AddReadRoles("ada")
	var meta kurrentdb.StreamMetadata
	meta.SetAcl(a)
	if _, err := w.admin.SetStreamMetadata(ctx, "$all", kurrentdb.AppendToStreamOptions{}, meta); err != nil {
		t.Fatalf("setting the ACL of $all: %v", err)
	}
	if err := readAll(w.ada); err != nil {
		t.Errorf("ada reading $all, granted: %v", err)
	}
	if err := subscribeAll(w.ada, filter); err != nil {
		t.Errorf("ada subscribing to $all, granted: %v", err)
	}
	if err := readAll(w.bob); !denied(err) {
		t.Errorf("bob reading $all, not granted: %v, want ErrorCodeAccessDenied", err)
	}
	if _, err := w.bob.SetStreamMetadata(ctx, "$all", kurrentdb.AppendToStreamOptions{}, meta); !denied(err) {
		t.Errorf("bob setting the ACL of $all: %v, want ErrorCodeAccessDenied", err)
	}
}

// Persistent subscriptions: operators and administrators manage groups;
// a consumer needs the right to read the group's stream; anyone
// authenticated reads their info.
func TestACLOnPersistentSubscriptions(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	create := func(c *kurrentdb.Client, group string) error {
		return c.CreatePersistentSubscription(ctx, "ledger", group, kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}})
	}
	if err := create(w.bob, "g"); !denied(err) {
		t.Errorf("bob creating a group: %v, want ErrorCodeAccessDenied", err)
	}
	if err := create(w.ada, "g"); !denied(err) {
		t.Errorf("ada creating a group: %v, want ErrorCodeAccessDenied", err)
	}
	if err := create(w.ops, "g"); err != nil {
		t.Fatalf("an operator creating a group: %v", err)
	}
	if err := create(w.admin, "g2"); err != nil {
		t.Fatalf("the admin creating a group: %v", err)
	}
	if err := w.bob.UpdatePersistentSubscription(ctx, "ledger", "g", kurrentdb.PersistentStreamSubscriptionOptions{}); !denied(err) {
		t.Errorf("bob updating a group: %v, want ErrorCodeAccessDenied", err)
	}
	if err := w.bob.DeletePersistentSubscription(ctx, "ledger", "g2", kurrentdb.DeletePersistentSubscriptionOptions{}); !denied(err) {
		t.Errorf("bob deleting a group: %v, want ErrorCodeAccessDenied", err)
	}
	if err := w.bob.ReplayParkedMessages(ctx, "ledger", "g", kurrentdb.ReplayParkedMessagesOptions{}); !denied(err) {
		t.Errorf("bob replaying parked events: %v, want ErrorCodeAccessDenied", err)
	}
	if _, err := w.bob.GetPersistentSubscriptionInfo(ctx, "ledger", "g", kurrentdb.GetPersistentSubscriptionOptions{}); err != nil {
		t.Errorf("bob reading a group's info: %v", err)
	}

	if _, err := w.bob.SubscribeToPersistentSubscription(ctx, "ledger", "g", kurrentdb.SubscribeToPersistentSubscriptionOptions{}); !denied(err) {
		t.Errorf("bob consuming a group on a stream he may not read: %v, want ErrorCodeAccessDenied", err)
	}
	sub, err := w.ada.SubscribeToPersistentSubscription(ctx, "ledger", "g", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatalf("ada consuming the group: %v", err)
	}
	defer sub.Close()
	got := sub.Recv()
	if got.EventAppeared == nil || got.EventAppeared.Event.OriginalEvent().StreamID != "ledger" {
		t.Fatalf("ada's first delivery: %+v", got)
	}
	if err := w.ops.DeletePersistentSubscription(ctx, "ledger", "g2", kurrentdb.DeletePersistentSubscriptionOptions{}); err != nil {
		t.Errorf("an operator deleting a group: %v", err)
	}
}

// The default ACLs come from the last event of $settings, which only
// administrators write.
func TestACLDefaultsFromSettings(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	settings := func(c *kurrentdb.Client, data string) error {
		_, err := c.AppendToStream(ctx, "$settings", kurrentdb.AppendToStreamOptions{}, jsonEvent("$settings", data))
		return err
	}
	appendTo := func(c *kurrentdb.Client, stream string) error {
		_, err := c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{}, events(1, "E")...)
		return err
	}
	if err := settings(w.bob, `{"$userStreamAcl": {"$w": "bob"}}`); !denied(err) {
		t.Errorf("bob writing $settings: %v, want ErrorCodeAccessDenied", err)
	}
	if err := settings(w.admin, `{"$userStreamAcl": {"$r": "$all", "$w": "writers"}, "$systemStreamAcl": {"$r": ["$admins", "auditors"]}}`); err != nil {
		t.Fatalf("the admin writing $settings: %v", err)
	}
	if err := appendTo(w.bob, "open"); !denied(err) {
		t.Errorf("bob appending under $userStreamAcl $w writers: %v, want ErrorCodeAccessDenied", err)
	}
	if _, err := drain(w.bob.ReadStream(ctx, "ledger", kurrentdb.ReadStreamOptions{}, 1)); !denied(err) {
		t.Errorf("the stream's own ACL still wins: bob reading ledger: %v, want ErrorCodeAccessDenied", err)
	}
	w.ts.createUser(t, "wanda", "wanda-pw", "writers", "auditors")
	wanda := w.ts.clientAs(t, "wanda", "wanda-pw")
	if err := appendTo(wanda, "open"); err != nil {
		t.Errorf("a writer appending: %v", err)
	}
	if _, err := drain(wanda.ReadStream(ctx, "$users", kurrentdb.ReadStreamOptions{}, 1)); err != nil {
		t.Errorf("an auditor reading a system stream under $systemStreamAcl: %v", err)
	}
	// A later $settings event replaces the earlier.
	if err := settings(w.admin, `{}`); err != nil {
		t.Fatal(err)
	}
	if err := appendTo(w.bob, "open"); err != nil {
		t.Errorf("bob appending under KurrentDB's defaults again: %v", err)
	}
}

// cairn.v1 is under the same ACLs.
func TestACLOnCairnV1(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	bob := cairn.NewStore(w.ts.remote(t, "bob", "bob-pw"), cairn.Options{})
	ada := cairn.NewStore(w.ts.remote(t, "ada", "ada-pw"), cairn.Options{})
	perm := func(err error) bool {
		return status.Code(errors.Unwrap(err)) == codes.PermissionDenied || status.Code(err) == codes.PermissionDenied
	}

	if _, err := bob.ReadStream(ctx, "ledger", 0, 10, cairn.Forward); !perm(err) {
		t.Errorf("bob reading ledger over cairn.v1: %v, want PermissionDenied", err)
	}
	if _, err := bob.Append(ctx, "ledger", cairn.Any, cairn.EventData{Type: "E"}); !perm(err) {
		t.Errorf("bob appending to ledger over cairn.v1: %v, want PermissionDenied", err)
	}
	if _, err := bob.ReadAll(ctx, 0, 10, cairn.Forward); !perm(err) {
		t.Errorf("bob reading $all over cairn.v1: %v, want PermissionDenied", err)
	}
	if err := bob.DeleteStream(ctx, "ledger", cairn.Any); !perm(err) {
		t.Errorf("bob deleting ledger over cairn.v1: %v, want PermissionDenied", err)
	}
	if _, err := bob.StreamVersion(ctx, "ledger"); !perm(err) {
		t.Errorf("bob asking ledger's version over cairn.v1: %v, want PermissionDenied", err)
	}
	if err := bob.Compact(ctx); !perm(err) {
		t.Errorf("bob compacting over cairn.v1: %v, want PermissionDenied", err)
	}
	if events, err := ada.ReadStream(ctx, "ledger", 0, 10, cairn.Forward); err != nil || len(events) != 3 {
		t.Errorf("ada reading ledger over cairn.v1: %d events, %v", len(events), err)
	}
	if _, err := ada.Append(ctx, "ledger", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
		t.Errorf("ada appending to ledger over cairn.v1: %v", err)
	}
	// Calls that show no event need only a user.
	c := cairnv1.NewCairnClient(w.ts.connAs(t, "bob", "bob-pw"))
	if _, err := c.Stats(ctx, &cairnv1.Empty{}); err != nil {
		t.Errorf("bob's stats: %v", err)
	}
	if _, err := c.GetHead(ctx, &cairnv1.Empty{}); err != nil {
		t.Errorf("bob's head: %v", err)
	}
	// Queries and index reads cover every stream: $all's right.
	q := &cairnv1.Query{Items: []*cairnv1.QueryItem{{Types: []string{"Entry"}}}}
	if _, err := c.ReadQuery(ctx, &cairnv1.ReadQueryRequest{Query: q, Count: 10}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob reading by query: %v, want PermissionDenied", err)
	}
	if _, err := c.Append(ctx, &cairnv1.AppendRequest{Stream: "bobs-own", ExpectedVersion: -2,
		Events: []*cairnv1.EventData{{Type: "E"}}, Condition: &cairnv1.AppendCondition{FailIfEventsMatch: q}}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob appending on a condition: %v, want PermissionDenied", err)
	}
	admin := cairnv1.NewCairnClient(w.ts.conn(t))
	if res, err := admin.ReadQuery(ctx, &cairnv1.ReadQueryRequest{Query: q, Count: 10}); err != nil || len(res.GetEvents()) == 0 {
		t.Errorf("the admin reading by query: %v, %v", res, err)
	}
}

// UmaDB's umadb.v1 is under the same ACLs: its reads cover the log, its
// appends go to one stream.
func TestACLOnUmaDB(t *testing.T) {
	w := newACLWorld(t)
	ctx := context.Background()
	bob := umadbv1.NewDCBClient(w.ts.connAs(t, "bob", "bob-pw"))
	event := []*umadbv1.Event{{EventType: "Registered", Tags: []string{"user:bob"}, Data: []byte(`{}`)}}
	if _, err := bob.Append(ctx, &umadbv1.AppendRequest{Events: event}); err != nil {
		t.Errorf("bob appending to UmaDB's stream (a user stream): %v", err)
	}
	cond := &umadbv1.AppendCondition{FailIfEventsMatch: &umadbv1.Query{Items: []*umadbv1.QueryItem{{Tags: []string{"user:bob"}}}}}
	if _, err := bob.Append(ctx, &umadbv1.AppendRequest{Events: event, Condition: cond}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob appending on a condition: %v, want PermissionDenied", err)
	}
	read := func(c umadbv1.DCBClient) error {
		rs, err := c.Read(ctx, &umadbv1.ReadRequest{})
		if err != nil {
			return err
		}
		_, err = rs.Recv()
		return err
	}
	if err := read(bob); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob reading through umadb.v1: %v, want PermissionDenied", err)
	}
	if err := read(umadbv1.NewDCBClient(w.ts.conn(t))); err != nil {
		t.Errorf("the admin reading through umadb.v1: %v", err)
	}
	if _, err := bob.Head(ctx, &umadbv1.HeadRequest{}); err != nil {
		t.Errorf("bob's head: %v", err)
	}
}

// The raw protocol's BatchAppend refuses a correlation id the ACL refuses,
// and goes on with the others; the scavenge takes an operator.
func TestACLOnBatchAppendAndScavenge(t *testing.T) {
	w := newACLWorld(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bs, err := api.NewStreamsClient(w.ts.connAs(t, "bob", "bob-pw")).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, stream := range []string{"ledger", "bobs-own"} {
		if err := bs.Send(&api.BatchAppendReq{
			CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: []string{"00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"}[i]}},
			Options: &api.BatchAppendReq_Options{
				StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte(stream)},
				ExpectedStreamPosition: &api.BatchAppendReq_Options_Any{Any: nil},
			},
			ProposedMessages: []*api.BatchAppendReq_ProposedMessage{{
				Id:       &shared.UUID{Value: &shared.UUID_String_{String_: []string{"10000000-0000-0000-0000-000000000001", "10000000-0000-0000-0000-000000000002"}[i]}},
				Metadata: map[string]string{"type": "E", "content-type": "application/json"},
				Data:     []byte(`{}`),
			}},
			IsFinal: true,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		resp, err := bs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		stream := string(resp.GetStreamIdentifier().GetStreamName())
		switch {
		case stream == "ledger" && codes.Code(resp.GetError().GetCode()) != codes.PermissionDenied:
			t.Errorf("response %d: bob's batch to ledger: %v, want PermissionDenied", i, resp)
		case stream == "ledger" && (len(resp.GetError().GetDetails()) != 1 || !resp.GetError().GetDetails()[0].MessageIs(&shared.AccessDenied{})):
			// The Node.js client reads the detail to raise AccessDeniedError.
			t.Errorf("response %d: bob's refused batch to ledger has the details %v, want event_store.client.AccessDenied", i, resp.GetError().GetDetails())
		case stream == "bobs-own" && resp.GetSuccess() == nil:
			t.Errorf("response %d: bob's batch to his own stream: %v, want success", i, resp)
		}
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}

	for name, pw := range map[string]string{"bob": "bob-pw", "ada": "ada-pw"} {
		_, err := operationspb.NewOperationsClient(w.ts.connAs(t, name, pw)).StartScavenge(ctx, &operationspb.StartScavengeReq{})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s starting a scavenge: %v, want PermissionDenied", name, err)
		}
	}
	if _, err := operationspb.NewOperationsClient(w.ts.connAs(t, "olga", "olga-pw")).StartScavenge(ctx, &operationspb.StartScavengeReq{}); err != nil {
		t.Errorf("an operator starting a scavenge: %v", err)
	}
}
