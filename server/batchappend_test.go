package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The Go client does not use BatchAppend; the other official clients do.
// The test drives it with the generated client of the protocol.
func TestBatchAppend(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	conn := ts.conn(t)
	bs, err := api.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := func() *api.BatchAppendReq_ProposedMessage {
		return &api.BatchAppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Metadata: map[string]string{"type": "Added", "content-type": "application/json"},
			Data:     []byte(`{}`),
		}
	}
	corr := func() *shared.UUID { return &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}} }
	opts := func(stream string, noStream bool) *api.BatchAppendReq_Options {
		o := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
		if noStream {
			o.ExpectedStreamPosition = &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
		} else {
			o.ExpectedStreamPosition = &api.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}
		}
		return o
	}

	// One batch in two requests, then a conflicting one.
	c1 := corr()
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: c1, Options: opts("cart", true), ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg(), msg()}}); err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: c1, ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg()}, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := bs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetSuccess().GetCurrentRevision() != 2 || resp.GetCorrelationId().GetString_() != c1.GetString_() {
		t.Errorf("first batch: %v", resp)
	}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: corr(), Options: opts("cart", true), ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg()}, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	resp, err = bs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetError().GetCode()) != codes.FailedPrecondition {
		t.Errorf("conflicting batch: %v, want a FailedPrecondition error", resp)
	}
	var wev shared.WrongExpectedVersion
	if d := resp.GetError().GetDetails(); len(d) != 1 || d[0].UnmarshalTo(&wev) != nil || wev.GetCurrentStreamRevision() != 2 {
		t.Errorf("conflict details: %v, want the current revision 2", resp.GetError().GetDetails())
	}

	// A bad message refuses its whole correlation id once, in whatever
	// request it arrives: nothing of it is written.
	c3 := corr()
	bad := msg()
	bad.Id = &shared.UUID{Value: &shared.UUID_String_{String_: "not-a-uuid"}}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: c3, Options: opts("cart", false), ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg(), bad, msg()}}); err != nil {
		t.Fatal(err)
	}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: c3, ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg()}, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	resp, err = bs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetError().GetCode()) != codes.InvalidArgument {
		t.Errorf("batch with a bad id: %v, want an InvalidArgument error", resp)
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if resp, err := bs.Recv(); err == nil {
		t.Errorf("a refused batch was answered twice: %v", resp)
	}
	if v, _ := ts.store.StreamVersion(ctx, "cart"); v != 2 {
		t.Errorf("cart at version %d, want 2", v)
	}
}

// A BatchAppend call holds at most MaxAppendBytes of open correlation ids:
// one that passes it, whether in one request or spread over several, is
// answered with the maximum-append-size error and nothing of it is
// written; the call goes on.
func TestBatchAppendSizeLimit(t *testing.T) {
	ts := start(t, server.Options{MaxAppendBytes: 4096})
	ctx := context.Background()
	conn := ts.conn(t)
	bs, err := api.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	empty := func(n int) []*api.BatchAppendReq_ProposedMessage {
		out := make([]*api.BatchAppendReq_ProposedMessage, n)
		for i := range out {
			out[i] = &api.BatchAppendReq_ProposedMessage{
				Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
				Metadata: map[string]string{"type": "E", "content-type": "application/octet-stream"},
			}
		}
		return out
	}
	opts := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte("s")},
		ExpectedStreamPosition: &api.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}}
	big := &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}}
	for range 10 { // 10 requests of 5 empty events: about 10 KiB in all
		if err := bs.Send(&api.BatchAppendReq{CorrelationId: big, Options: opts, ProposedMessages: empty(5)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: big, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	resp, err := bs.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var max shared.MaximumAppendSizeExceeded
	d := resp.GetError().GetDetails()
	// One detail: the clients read the details of a batch append's status
	// as a single message (the Node.js client makes its
	// MaxAppendSizeExceededError from it).
	if codes.Code(resp.GetError().GetCode()) != codes.InvalidArgument || len(d) != 1 || d[0].UnmarshalTo(&max) != nil || max.GetMaxAppendSize() != 4096 {
		t.Fatalf("batch of 50 empty events over 4096 bytes: %v, want InvalidArgument with the one detail MaximumAppendSizeExceeded 4096", resp)
	}
	// The call goes on: a small batch is written.
	small := &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: small, Options: opts, ProposedMessages: empty(2), IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	if resp, err = bs.Recv(); err != nil || resp.GetSuccess() == nil {
		t.Fatalf("small batch after a refused one: %v, %v", resp, err)
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if v, _ := ts.store.StreamVersion(ctx, "s"); v != 1 {
		t.Errorf("s at version %d, want 1: nothing of the refused batch", v)
	}
}

// A batch append past the client's deadline is answered as KurrentDB
// answers it, with DEADLINE_EXCEEDED and the protocol's Timeout detail
// (which the clients turn into their deadline error), and not written;
// within its deadline it is written. The clients of 21.10 send the
// deadline as an absolute time (deadline_21_10_0), later ones as a
// duration from the options.
func TestBatchAppendDeadline(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	conn := ts.conn(t)
	bs, err := api.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := &api.BatchAppendReq_ProposedMessage{
		Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata: map[string]string{"type": "E", "content-type": "application/json"},
		Data:     []byte(`{}`),
	}
	opts := func(stream string) *api.BatchAppendReq_Options {
		return &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
			ExpectedStreamPosition: &api.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}}}
	}
	send := func(o *api.BatchAppendReq_Options, final bool) {
		t.Helper()
		corr := &shared.UUID{Value: &shared.UUID_String_{String_: o.String()}}
		if err := bs.Send(&api.BatchAppendReq{CorrelationId: corr, Options: o, ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg}, IsFinal: final}); err != nil {
			t.Fatal(err)
		}
	}
	wantTimeout := func(what string) {
		t.Helper()
		resp, err := bs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		d := resp.GetError().GetDetails()
		var timeout shared.Timeout
		if codes.Code(resp.GetError().GetCode()) != codes.DeadlineExceeded || resp.GetError().GetMessage() != "Timeout" ||
			len(d) != 1 || d[0].UnmarshalTo(&timeout) != nil {
			t.Fatalf("%s: %v, want DEADLINE_EXCEEDED \"Timeout\" with the Timeout detail", what, resp)
		}
	}

	past := opts("late")
	past.DeadlineOption = &api.BatchAppendReq_Options_Deadline_21_10_0{Deadline_21_10_0: timestamppb.New(time.Now().Add(-time.Second))}
	send(past, true)
	wantTimeout("absolute deadline passed")

	short := opts("slow")
	short.DeadlineOption = &api.BatchAppendReq_Options_Deadline{Deadline: durationpb.New(time.Millisecond)}
	corr := &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}}
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: corr, Options: short, ProposedMessages: []*api.BatchAppendReq_ProposedMessage{msg}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the rest arrives after the deadline
	if err := bs.Send(&api.BatchAppendReq{CorrelationId: corr, IsFinal: true}); err != nil {
		t.Fatal(err)
	}
	wantTimeout("duration deadline passed")

	future := opts("in-time")
	future.DeadlineOption = &api.BatchAppendReq_Options_Deadline_21_10_0{Deadline_21_10_0: timestamppb.New(time.Now().Add(time.Minute))}
	send(future, true)
	if resp, err := bs.Recv(); err != nil || resp.GetSuccess() == nil {
		t.Fatalf("within its deadline: %v, %v", resp, err)
	}
	if err := bs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"late", "slow"} {
		if ok, _ := ts.store.StreamExists(ctx, s); ok {
			t.Errorf("%s was written after its deadline", s)
		}
	}
}
