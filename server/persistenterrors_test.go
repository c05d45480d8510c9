package server_test

import (
	"context"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// wantGroupError fails unless err has the code, message and trailers with
// which KurrentDB reports a persistent subscription error: the clients that
// read the trailers (Node.js, Java, .NET) raise their typed errors from them.
func wantGroupError(t *testing.T, what string, err error, trailer metadata.MD, code codes.Code, msg, exception, stream, group string) {
	t.Helper()
	if status.Code(err) != code || status.Convert(err).Message() != msg {
		t.Errorf("%s: %v, want %v %q", what, err, code, msg)
	}
	for k, want := range map[string]string{"exception": exception, "stream-name": stream, "group-name": group} {
		if got := trailer.Get(k); len(got) != 1 || got[0] != want {
			t.Errorf("%s: trailer %s = %q, want %q", what, k, got, want)
		}
	}
}

// TestPersistentSubscriptionErrors checks each error of the persistent
// subscriptions service as KurrentDB reports it, through the generated
// client (status, message, trailers) and through the official Go client
// (its typed error codes).
func TestPersistentSubscriptionErrors(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	raw := rawPersistent(t, ts)
	var tr metadata.MD

	create := &ps.CreateReq{Options: &ps.CreateReq_Options{
		GroupName: "g",
		StreamOption: &ps.CreateReq_Options_Stream{Stream: &ps.CreateReq_StreamOptions{
			StreamIdentifier: streamID("orders"), RevisionOption: &ps.CreateReq_StreamOptions_Start{Start: &shared.Empty{}}}},
		Settings: &ps.CreateReq_Settings{MaxSubscriberCount: 1, ConsumerStrategy: "RoundRobin",
			MessageTimeout: &ps.CreateReq_Settings_MessageTimeoutMs{MessageTimeoutMs: 1000}},
	}}
	if _, err := raw.Create(ctx, create); err != nil {
		t.Fatal(err)
	}
	_, err := raw.Create(ctx, create, grpc.Trailer(&tr))
	wantGroupError(t, "create twice", err, tr, codes.AlreadyExists,
		"Subscription group g on stream orders exists.", "persistent-subscription-exists", "orders", "g")

	missing := "Subscription group nope on stream orders does not exist."
	_, err = raw.GetInfo(ctx, &ps.GetInfoReq{Options: &ps.GetInfoReq_Options{GroupName: "nope",
		StreamOption: &ps.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: streamID("orders")}}}, grpc.Trailer(&tr))
	wantGroupError(t, "info of a missing group", err, tr, codes.NotFound, missing, "persistent-subscription-does-not-exist", "orders", "nope")
	_, err = raw.Delete(ctx, &ps.DeleteReq{Options: &ps.DeleteReq_Options{GroupName: "nope",
		StreamOption: &ps.DeleteReq_Options_StreamIdentifier{StreamIdentifier: streamID("orders")}}}, grpc.Trailer(&tr))
	wantGroupError(t, "delete of a missing group", err, tr, codes.NotFound, missing, "persistent-subscription-does-not-exist", "orders", "nope")
	_, err = raw.Delete(ctx, &ps.DeleteReq{Options: &ps.DeleteReq_Options{GroupName: "nope",
		StreamOption: &ps.DeleteReq_Options_All{All: &shared.Empty{}}}}, grpc.Trailer(&tr))
	wantGroupError(t, "delete of a missing group on $all", err, tr, codes.NotFound,
		"Subscription group nope on stream $all does not exist.", "persistent-subscription-does-not-exist", "$all", "nope")

	read := func(group string) (ps.PersistentSubscriptions_ReadClient, error) {
		t.Helper()
		r, err := raw.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Send(&ps.ReadReq{Content: &ps.ReadReq_Options_{Options: &ps.ReadReq_Options{
			GroupName: group, BufferSize: 10,
			StreamOption: &ps.ReadReq_Options_StreamIdentifier{StreamIdentifier: streamID("orders")},
			UuidOption:   &ps.ReadReq_Options_UUIDOption{Content: &ps.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
		}}}); err != nil {
			t.Fatal(err)
		}
		_, err = r.Recv()
		return r, err
	}
	r, err := read("nope")
	wantGroupError(t, "read of a missing group", err, r.Trailer(), codes.NotFound, missing, "persistent-subscription-does-not-exist", "orders", "nope")
	first, err := read("g")
	if err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	defer first.CloseSend()
	r, err = read("g")
	wantGroupError(t, "second consumer of a group of one", err, r.Trailer(), codes.FailedPrecondition,
		"Maximum subscriptions reached for subscription group g on stream orders.", "maximum-subscribers-reached", "orders", "g")

	// The official Go client's typed errors.
	c := ts.client(t)
	err = c.CreatePersistentSubscription(ctx, "orders", "g", kurrentdb.PersistentStreamSubscriptionOptions{})
	if errorCode(err) != kurrentdb.ErrorCodeResourceAlreadyExists {
		t.Errorf("Go client, create twice: %v, want ErrorCodeResourceAlreadyExists", err)
	}
	err = c.UpdatePersistentSubscription(ctx, "orders", "nope", kurrentdb.PersistentStreamSubscriptionOptions{})
	if errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Errorf("Go client, update of a missing group: %v, want ErrorCodeResourceNotFound", err)
	}
	err = c.DeletePersistentSubscriptionToAll(ctx, "nope", kurrentdb.DeletePersistentSubscriptionOptions{})
	if errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Errorf("Go client, delete of a missing group on $all: %v, want ErrorCodeResourceNotFound", err)
	}
	err = c.ReplayParkedMessages(ctx, "orders", "nope", kurrentdb.ReplayParkedMessagesOptions{})
	if errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
		t.Errorf("Go client, replay of a missing group: %v, want ErrorCodeResourceNotFound", err)
	}
}
