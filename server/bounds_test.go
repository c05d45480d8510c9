package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/api/cairnv1/cairnsvc"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/cairndb/cairn/server/kurrentdbsvc"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const mib = 1 << 20

// largeEvents fills ts's store with n events of size bytes of data each,
// in appends of one event.
func largeEvents(t *testing.T, ts *testServer, n, size int) {
	t.Helper()
	data := make([]byte, size)
	for i := range n {
		data[0] = byte(i)
		if _, err := ts.store.Append(context.Background(), "big", cairn.Any, cairn.EventData{Type: "E", Data: data, ContentType: cairn.ContentBinary}); err != nil {
			t.Fatal(err)
		}
	}
}

// allocated returns the bytes the process allocated while fn ran: what a
// request made the server (and the in-process client) hold, whether or
// not the collector freed it since. It does not depend on timing.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func rawConn(t *testing.T, ts *testServer) *grpc.ClientConn {
	t.Helper()
	return ts.conn(t, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64*mib)))
}

// A cairn.v1 read of 4096 large events answers with what fits in one
// message, says so, and allocates about one message's worth, not the
// events asked for; the remote engine pages through all of them.
func TestCairnV1ReadIsBoundedByBytes(t *testing.T) {
	ts := start(t, server.Options{})
	const n, size = 24, 4 * mib // 96 MiB in all; one message holds 4 of them
	first := ts.next(t)
	largeEvents(t, ts, n, size)
	c := cairnv1.NewCairnClient(rawConn(t, ts))
	ctx := context.Background()

	var res *cairnv1.ReadResponse
	var err error
	alloc := allocated(func() {
		res, err = c.ReadAll(ctx, &cairnv1.ReadAllRequest{From: first, Count: 4096})
	})
	if err != nil {
		t.Fatalf("read of 4096 events of 4 MiB: %v", err)
	}
	if got := len(res.GetEvents()); got == 0 || got >= n || !res.GetSizeLimited() {
		t.Fatalf("read of 4096 events of 4 MiB: %d events, size limited %v; want some, not all, and size limited", got, res.GetSizeLimited())
	}
	// The Store reads a message's worth (17 MiB) and one event more; gRPC
	// encodes the response, and the client here receives and decodes it.
	const limit = 8 * 17 * mib
	if alloc > limit {
		t.Errorf("the read allocated %d MiB, more than %d MiB", alloc/mib, limit/mib)
	}
	t.Logf("read of 4096 events of 4 MiB: %d events in one response, %d MiB allocated", len(res.GetEvents()), alloc/mib)

	// max_bytes asks for less.
	res, err = c.ReadStream(ctx, &cairnv1.ReadStreamRequest{Stream: "big", Count: 4096, MaxBytes: 1})
	if err != nil || len(res.GetEvents()) != 1 || !res.GetSizeLimited() {
		t.Fatalf("read with max_bytes 1: %d events, size limited %v, %v; want 1 event, size limited", len(res.GetEvents()), res.GetSizeLimited(), err)
	}

	// The remote engine reads on after each response, and its iterators
	// page by size.
	remote := cairn.NewStore(ts.remote(t, "admin", "changeit"), cairn.Options{})
	all, err := remote.ReadAll(ctx, first, 4096, cairn.Forward)
	if err != nil || len(all) != n {
		t.Fatalf("remote ReadAll of 4096: %d events, %v; want %d", len(all), err, n)
	}
	all = nil
	i := 0
	for e, err := range remote.Stream(ctx, "big", cairn.StreamEnd, cairn.Backward) {
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(n - 1 - i); e.Version != want || e.Data[0] != byte(want) {
			t.Fatalf("remote Stream backward: event %d is version %d, want %d", i, e.Version, want)
		}
		i++
	}
	if i != n {
		t.Fatalf("remote Stream backward: %d events, want %d", i, n)
	}
}

// An event larger than the message limit (written under a larger event
// limit than the server's Store has) fails the read clearly rather than
// breaking the connection.
func TestCairnV1EventLargerThanTheMessageLimit(t *testing.T) {
	engine := memstore.New()
	big := cairn.NewStore(engine, cairn.Options{MaxEventBytes: 4 * mib})
	if _, err := big.Append(context.Background(), "s", cairn.Any, cairn.EventData{Type: "E", Data: make([]byte, 3*mib)}); err != nil {
		t.Fatal(err)
	}
	store := cairn.NewStore(engine, cairn.Options{MaxEventBytes: 1 * mib})
	srv := grpc.NewServer()
	cairnv1.RegisterCairnServer(srv, cairnsvc.New(store, cairnsvc.Options{}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64*mib)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = cairnv1.NewCairnClient(conn).ReadAll(context.Background(), &cairnv1.ReadAllRequest{Count: 10})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "position 0") {
		t.Fatalf("read of an event over the message limit: %v, want ResourceExhausted naming its position", err)
	}
}

// A KurrentDB read of $all holds a page of a few MiB, not 512 events of
// whatever size: reading 3 large events allocates about 3 events.
func TestKurrentReadIsBoundedByBytes(t *testing.T) {
	ts := start(t, server.Options{})
	const n, size = 48, 4 * mib
	first := ts.next(t)
	largeEvents(t, ts, n, size)
	c := ts.client(t)
	ctx := context.Background()
	var got []*kurrentdb.ResolvedEvent
	var err error
	alloc := allocated(func() {
		got, err = drain(c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: kurrentdb.Position{Commit: first, Prepare: first}}, 3))
	})
	if err != nil || len(got) != 3 {
		t.Fatalf("read of 3 events: %d, %v", len(got), err)
	}
	// The server's pages (4 MiB, here one event each) and the three
	// events encoded, sent, received and decoded.
	const limit = 80 * mib
	if alloc > limit {
		t.Errorf("reading 3 events of 4 MiB allocated %d MiB, more than %d MiB", alloc/mib, limit/mib)
	}
	t.Logf("read of 3 events of 4 MiB: %d MiB allocated", alloc/mib)
}

// filteredRead reads $all from a position with a stream-name prefix filter
// through the raw protocol (the Go client reads $all without filters) and
// returns the events and checkpoints it answered with.
func filteredRead(t *testing.T, conn *grpc.ClientConn, from, count uint64, fo *api.ReadReq_Options_FilterOptions) (events []uint64, checkpoints []uint64, err error) {
	t.Helper()
	rs, err := api.NewStreamsClient(conn).Read(context.Background(), &api.ReadReq{Options: &api.ReadReq_Options{
		StreamOption: &api.ReadReq_Options_All{All: &api.ReadReq_Options_AllOptions{
			AllOption: &api.ReadReq_Options_AllOptions_Position{Position: &api.ReadReq_Options_Position{CommitPosition: from, PreparePosition: from}},
		}},
		ReadDirection: api.ReadReq_Options_Forwards,
		CountOption:   &api.ReadReq_Options_Count{Count: count},
		FilterOption:  &api.ReadReq_Options_Filter{Filter: fo},
		UuidOption:    &api.ReadReq_Options_UUIDOption{Content: &api.ReadReq_Options_UUIDOption_String_{String_: &shared.Empty{}}},
	}})
	if err != nil {
		return nil, nil, err
	}
	for {
		msg, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return events, checkpoints, nil
		}
		if err != nil {
			return events, checkpoints, err
		}
		switch c := msg.Content.(type) {
		case *api.ReadResp_Event:
			events = append(events, c.Event.GetEvent().GetCommitPosition())
		case *api.ReadResp_Checkpoint_:
			checkpoints = append(checkpoints, c.Checkpoint.GetCommitPosition())
		}
	}
}

func prefixFilter(max uint32, prefixes ...string) *api.ReadReq_Options_FilterOptions {
	fo := &api.ReadReq_Options_FilterOptions{
		Filter: &api.ReadReq_Options_FilterOptions_StreamIdentifier{StreamIdentifier: &api.ReadReq_Options_FilterOptions_Expression{Prefix: prefixes}},
		Window: &api.ReadReq_Options_FilterOptions_Count{Count: &shared.Empty{}},
	}
	if max > 0 {
		fo.Window = &api.ReadReq_Options_FilterOptions_Max{Max: max}
	}
	return fo
}

// A filtered read of $all searches at most its filter's max events: one
// that matches nothing ends after them with a checkpoint at the last event
// it examined, from which the client reads on; it does not scan the log.
func TestFilteredReadHonoursItsSearchWindow(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	first := ts.next(t) // after the built-in users
	for i := range 20 {
		evs := make([]cairn.EventData, 50)
		for j := range evs {
			evs[j] = cairn.EventData{Type: "E"}
		}
		if _, err := ts.store.Append(ctx, fmt.Sprintf("order-%d", i), cairn.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	// 1000 events, positions first+0..first+999, streams order-0 … order-19.
	conn := rawConn(t, ts)
	at := func(i uint64) uint64 { return first + i }

	events, checkpoints, err := filteredRead(t, conn, first, 10, prefixFilter(100, "nothing-"))
	if err != nil || len(events) != 0 || len(checkpoints) != 1 || checkpoints[0] != at(99) {
		t.Fatalf("no-match read with a window of 100: events %v, checkpoints %v, %v; want none and a checkpoint at %d", events, checkpoints, err, at(99))
	}
	// Reading on from the checkpoint finds the next match.
	events, _, err = filteredRead(t, conn, first, 2, prefixFilter(1000, "order-3"))
	if err != nil || len(events) != 2 || events[0] != at(150) || events[1] != at(151) {
		t.Fatalf("read of order-3…: %v, %v; want positions %d, %d", events, err, at(150), at(151))
	}
	// A window that ends before count matches ends the read with the
	// matches found and a checkpoint.
	events, checkpoints, err = filteredRead(t, conn, first, 100, prefixFilter(160, "order-3", "order-0"))
	if err != nil || len(events) != 60 || len(checkpoints) != 1 || checkpoints[0] != at(159) {
		t.Fatalf("read with a window of 160: %d events, checkpoints %v, %v; want 60 events and a checkpoint at %d", len(events), checkpoints, err, at(159))
	}
	// Without a max the read searches to the end of the log.
	events, checkpoints, err = filteredRead(t, conn, 0, 10, prefixFilter(0, "order-19"))
	if err != nil || len(events) != 10 || events[0] != at(950) || len(checkpoints) != 0 {
		t.Fatalf("read without a max: events %v, checkpoints %v, %v; want %d…", events, checkpoints, err, at(950))
	}
	// Prefixes of many lengths, one of which matches.
	many := make([]string, 0, kurrentdbsvc.MaxFilterPrefixes)
	for i := range kurrentdbsvc.MaxFilterPrefixes - 1 {
		many = append(many, fmt.Sprintf("x%0*d", i%40+1, i))
	}
	many = append(many, "order-7")
	events, _, err = filteredRead(t, conn, 0, 3, prefixFilter(0, many...))
	if err != nil || len(events) != 3 || events[0] != at(350) {
		t.Fatalf("read with %d prefixes: %v, %v; want %d…", len(many), events, err, at(350))
	}
}

// A filter's size is bounded: too many prefixes, too long a prefix or
// regular expression is refused with InvalidArgument naming the limit.
func TestFilterSizeIsBounded(t *testing.T) {
	ts := start(t, server.Options{})
	conn := rawConn(t, ts)
	many := make([]string, kurrentdbsvc.MaxFilterPrefixes+1)
	for i := range many {
		many[i] = fmt.Sprint("p", i)
	}
	regex := &api.ReadReq_Options_FilterOptions{
		Filter: &api.ReadReq_Options_FilterOptions_EventType{EventType: &api.ReadReq_Options_FilterOptions_Expression{
			Regex: strings.Repeat("a", kurrentdbsvc.MaxFilterRegexBytes+1)}},
		Window: &api.ReadReq_Options_FilterOptions_Count{Count: &shared.Empty{}},
	}
	for _, c := range []struct {
		name  string
		fo    *api.ReadReq_Options_FilterOptions
		limit int
	}{
		{"too many prefixes", prefixFilter(0, many...), kurrentdbsvc.MaxFilterPrefixes},
		{"a long prefix", prefixFilter(0, strings.Repeat("p", kurrentdbsvc.MaxFilterPrefixBytes+1)), kurrentdbsvc.MaxFilterPrefixBytes},
		{"a long regular expression", regex, kurrentdbsvc.MaxFilterRegexBytes},
	} {
		_, _, err := filteredRead(t, conn, 0, 10, c.fo)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), fmt.Sprint("limit is ", c.limit)) {
			t.Errorf("%s: %v, want InvalidArgument naming the limit %d", c.name, err, c.limit)
		}
	}
}
