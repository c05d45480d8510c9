package umadbsvc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/api/umadbv1/umadbsvc"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// serve starts the service on a loopback port over a fresh memory engine
// and returns a client of the generated stubs, as UmaDB's clients speak.
func serve(t *testing.T) (umadbv1.DCBClient, *cairn.Store) {
	t.Helper()
	store := memstore.Open()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if err := umadbsvc.Register(srv, store, umadbsvc.Options{}); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		store.Close()
	})
	return umadbv1.NewDCBClient(conn), store
}

func event(typ string, tags ...string) *umadbv1.Event {
	return &umadbv1.Event{EventType: typ, Tags: tags, Data: []byte(typ)}
}

func query(items ...*umadbv1.QueryItem) *umadbv1.Query { return &umadbv1.Query{Items: items} }

func tags(t ...string) *umadbv1.QueryItem { return &umadbv1.QueryItem{Tags: t} }

// read returns the positions a read returns and the head its last message
// reports (0 for none).
func read(t *testing.T, c umadbv1.DCBClient, req *umadbv1.ReadRequest) ([]uint64, uint64) {
	t.Helper()
	st, err := c.Read(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	var head uint64
	messages := 0
	for {
		res, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		messages++
		for _, e := range res.GetEvents() {
			got = append(got, e.GetPosition())
		}
		head = res.GetHead()
	}
	if messages == 0 {
		t.Fatalf("read %+v sent no message; a read sends at least one", req)
	}
	return got, head
}

func mustAppend(t *testing.T, c umadbv1.DCBClient, req *umadbv1.AppendRequest) uint64 {
	t.Helper()
	res, err := c.Append(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.GetPosition()
}

func TestHeadAndPositionsStartAtOne(t *testing.T) {
	c, store := serve(t)
	ctx := context.Background()
	h, err := c.Head(ctx, &umadbv1.HeadRequest{})
	if err != nil || h.Position != nil {
		t.Fatalf("head of an empty store = %v, %v; want none", h, err)
	}
	if got, head := read(t, c, &umadbv1.ReadRequest{}); len(got) != 0 || head != 0 {
		t.Fatalf("read of an empty store = %v, head %d", got, head)
	}
	if p := mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type1", "tagX")}}); p != 1 {
		t.Fatalf("first append at %d, want 1", p)
	}
	if p := mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type2", "tagA", "tagB"), event("type3", "tagA", "tagC")}}); p != 3 {
		t.Fatalf("second append at %d, want 3 (its last event)", p)
	}
	if h, _ := c.Head(ctx, &umadbv1.HeadRequest{}); h.GetPosition() != 3 {
		t.Fatalf("head = %d, want 3", h.GetPosition())
	}
	// The events are cairn events of the service's stream.
	events, err := store.ReadStream(ctx, umadbsvc.DefaultStream, 0, 10, cairn.Forward)
	if err != nil || len(events) != 3 || events[1].Type != "type2" || events[1].Position != 1 {
		t.Fatalf("stream %s = %+v, %v", umadbsvc.DefaultStream, events, err)
	}
}

func TestReadStartBackwardsLimit(t *testing.T) {
	c, _ := serve(t)
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type1", "tagX")}})
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type2", "tagA", "tagB"), event("type3", "tagA", "tagC")}})
	tagA := query(tags("tagA"))
	cases := []struct {
		name string
		req  *umadbv1.ReadRequest
		want []uint64
		head uint64
	}{
		{"all", &umadbv1.ReadRequest{}, []uint64{1, 2, 3}, 3},
		{"all backwards", &umadbv1.ReadRequest{Backwards: new(true)}, []uint64{3, 2, 1}, 3},
		{"from 2", &umadbv1.ReadRequest{Start: new(uint64(2))}, []uint64{2, 3}, 3},
		{"backwards from 2", &umadbv1.ReadRequest{Start: new(uint64(2)), Backwards: new(true)}, []uint64{2, 1}, 3},
		{"backwards from 0", &umadbv1.ReadRequest{Start: new(uint64(0)), Backwards: new(true)}, nil, 0},
		{"from beyond the head", &umadbv1.ReadRequest{Start: new(uint64(4))}, nil, 3},
		{"limit: the head is the last event read", &umadbv1.ReadRequest{Start: new(uint64(2)), Limit: new(uint32(1))}, []uint64{2}, 2},
		{"backwards, limit", &umadbv1.ReadRequest{Backwards: new(true), Limit: new(uint32(1))}, []uint64{3}, 3},
		{"limit 0", &umadbv1.ReadRequest{Limit: new(uint32(0))}, nil, 0},
		{"limit and nothing read: no head", &umadbv1.ReadRequest{Start: new(uint64(11)), Limit: new(uint32(10))}, nil, 0},
		{"backwards from beyond, limit", &umadbv1.ReadRequest{Start: new(uint64(11)), Backwards: new(true), Limit: new(uint32(10))}, []uint64{3, 2, 1}, 1},
		{"a type", &umadbv1.ReadRequest{Query: query(&umadbv1.QueryItem{Types: []string{"type1"}})}, []uint64{1}, 3},
		{"a tag", &umadbv1.ReadRequest{Query: tagA}, []uint64{2, 3}, 3},
		{"two tags", &umadbv1.ReadRequest{Query: query(tags("tagA", "tagB"))}, []uint64{2}, 3},
		{"a tag or a tag", &umadbv1.ReadRequest{Query: query(tags("tagB"), tags("tagX"))}, []uint64{1, 2}, 3},
		{"type and tag", &umadbv1.ReadRequest{Query: query(&umadbv1.QueryItem{Types: []string{"type2"}, Tags: []string{"tagX"}})}, nil, 3},
		{"a tag, in batches of one", &umadbv1.ReadRequest{Query: tagA, BatchSize: new(uint32(1))}, []uint64{2, 3}, 3},
		{"a tag from 3", &umadbv1.ReadRequest{Query: tagA, Start: new(uint64(3))}, []uint64{3}, 3},
	}
	for _, tc := range cases {
		got, head := read(t, c, tc.req)
		if !slices.Equal(got, tc.want) || head != tc.head {
			t.Errorf("%s: read %v head %d, want %v head %d", tc.name, got, head, tc.want, tc.head)
		}
	}
}

func TestAppendCondition(t *testing.T) {
	c, _ := serve(t)
	ctx := context.Background()
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type1", "tagX")}})
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("type2", "tagA", "tagB")}})
	fail := func(cond *umadbv1.AppendCondition) {
		t.Helper()
		_, err := c.Append(ctx, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("new")}, Condition: cond})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("condition %v: %v, want FAILED_PRECONDITION (UmaDB's integrity error)", cond, err)
		}
		for _, d := range status.Convert(err).Details() {
			if e, ok := d.(*umadbv1.ErrorResponse); ok && e.GetErrorType() == umadbv1.ErrorResponse_INTEGRITY {
				return
			}
		}
		t.Fatalf("condition %v: %v has no INTEGRITY ErrorResponse", cond, err)
	}
	fail(&umadbv1.AppendCondition{})                                       // no query: every event
	fail(&umadbv1.AppendCondition{FailIfEventsMatch: query(tags("tagX"))}) // any position
	fail(&umadbv1.AppendCondition{FailIfEventsMatch: query(tags("tagA")), After: new(uint64(1))})
	fail(&umadbv1.AppendCondition{FailIfEventsMatch: query(tags("tagX")), After: new(uint64(0))}) // after 0: all
	if h, _ := c.Head(ctx, &umadbv1.HeadRequest{}); h.GetPosition() != 2 {
		t.Fatalf("refused appends wrote events: head %d", h.GetPosition())
	}
	for i, cond := range []*umadbv1.AppendCondition{
		{FailIfEventsMatch: query(tags("tagX")), After: new(uint64(1))},
		{FailIfEventsMatch: query(&umadbv1.QueryItem{Types: []string{"typeN"}})},
		{FailIfEventsMatch: query(tags("tagY"))},
		{FailIfEventsMatch: query(tags("tagA")), After: new(uint64(2))},
	} {
		if p := mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("new")}, Condition: cond}); p != uint64(3+i) {
			t.Fatalf("append %d at %d, want %d", i, p, 3+i)
		}
	}
}

// An append repeated with the same event ids returns the first position,
// although its own events now fail its condition.
func TestIdempotentAppend(t *testing.T) {
	c, _ := serve(t)
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("first")}})
	e := event("type5", "tag5")
	e.Uuid = uuid.NewString()
	req := &umadbv1.AppendRequest{Events: []*umadbv1.Event{e}, Condition: &umadbv1.AppendCondition{FailIfEventsMatch: query(tags("tag5")), After: new(uint64(1))}}
	p1 := mustAppend(t, c, req)
	p2 := mustAppend(t, c, req)
	if p1 != 2 || p2 != 2 {
		t.Fatalf("append then its retry at %d and %d, want 2 twice", p1, p2)
	}
	got, _ := read(t, c, &umadbv1.ReadRequest{Query: query(tags("tag5"))})
	if len(got) != 1 {
		t.Fatalf("the retry wrote again: tag5 at %v", got)
	}
	st, _ := c.Read(context.Background(), &umadbv1.ReadRequest{Start: new(uint64(2))})
	res, err := st.Recv()
	if err != nil || res.GetEvents()[0].GetEvent().GetUuid() != e.Uuid {
		t.Fatalf("read back %v, %v; want the event's uuid %s", res, err, e.Uuid)
	}
	if _, err := c.Append(context.Background(), &umadbv1.AppendRequest{Events: []*umadbv1.Event{{EventType: "x", Uuid: "not-a-uuid"}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a malformed uuid: %v, want INVALID_ARGUMENT", err)
	}
}

// A subscription delivers the matching history, then the matching events
// appended later, until its limit.
func TestSubscribe(t *testing.T) {
	c, _ := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("E", "a"), event("E", "b")}})
	st, err := c.Read(ctx, &umadbv1.ReadRequest{Query: query(tags("a")), Subscribe: new(true), Limit: new(uint32(3))})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	recv := func() {
		res, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.GetEvents() {
			got = append(got, e.GetPosition())
		}
	}
	recv()
	if !slices.Equal(got, []uint64{1}) {
		t.Fatalf("history = %v, want [1]", got)
	}
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("E", "b")}})
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("E", "a")}})
	recv()
	mustAppend(t, c, &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("E", "a"), event("E", "a")}})
	for len(got) < 3 {
		recv()
	}
	if !slices.Equal(got, []uint64{1, 4, 5}) {
		t.Fatalf("delivered %v, want [1 4 5]", got)
	}
	if _, err := st.Recv(); err != io.EOF {
		t.Fatalf("after its limit the subscription sent %v, want the end", err)
	}
	st, err = c.Read(ctx, &umadbv1.ReadRequest{Subscribe: new(true), Backwards: new(true)})
	if err == nil {
		_, err = st.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a backward subscription: %v, want INVALID_ARGUMENT", err)
	}
}

func TestTrackingIsRefused(t *testing.T) {
	c, _ := serve(t)
	_, err := c.Append(context.Background(), &umadbv1.AppendRequest{Events: []*umadbv1.Event{event("E")}, TrackingInfo: &umadbv1.TrackingInfo{Source: "s", Position: 1}})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("append with tracking info: %v, want UNIMPLEMENTED", err)
	}
	if _, err := c.GetTrackingInfo(context.Background(), &umadbv1.TrackingRequest{Source: "s"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetTrackingInfo: %v", err)
	}
	if h, _ := c.Head(context.Background(), &umadbv1.HeadRequest{}); h.Position != nil {
		t.Fatal("a refused append wrote its events")
	}
}

func TestNewRefusesASystemStream(t *testing.T) {
	store := memstore.Open()
	defer store.Close()
	if _, err := umadbsvc.New(store, umadbsvc.Options{Stream: "$dcb"}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("a system stream: %v, want ErrInvalidArgument", err)
	}
}
