package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// gatedEngine is the memory engine, with the appends to streams named
// "held-…" made to wait until release is closed.
type gatedEngine struct {
	*memstore.Store
	arrived chan string   // the stream of each held append, as it arrives
	release chan struct{} // closed to let the held appends through
}

func newGatedEngine() *gatedEngine {
	return &gatedEngine{Store: memstore.New(), arrived: make(chan string, 64), release: make(chan struct{})}
}

func (g *gatedEngine) Append(ctx context.Context, stream string, exp cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	if strings.HasPrefix(stream, "held-") {
		g.arrived <- stream
		<-g.release
	}
	return g.Store.Append(ctx, stream, exp, events)
}

// batchCall drives a BatchAppend call with the generated client.
type batchCall struct {
	t    *testing.T
	call grpc.BidiStreamingClient[api.BatchAppendReq, api.BatchAppendResp]
}

func openBatch(t *testing.T, conn *grpc.ClientConn) *batchCall {
	t.Helper()
	call, err := api.NewStreamsClient(conn).BatchAppend(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &batchCall{t: t, call: call}
}

// send sends an append of events of size bytes each to stream, whole and
// final, with the expected revision exp (-1: no stream), and returns its
// correlation id.
func (b *batchCall) send(stream string, exp int64, events, size int) string {
	b.t.Helper()
	opts := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	if exp < 0 {
		opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
	} else {
		opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_StreamPosition{StreamPosition: uint64(exp)}
	}
	id := uuid.NewString()
	req := &api.BatchAppendReq{CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: id}}, Options: opts, IsFinal: true}
	for range events {
		req.ProposedMessages = append(req.ProposedMessages, &api.BatchAppendReq_ProposedMessage{
			Id:       &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
			Metadata: map[string]string{"type": "E", "content-type": "application/octet-stream"},
			Data:     make([]byte, size),
		})
	}
	if err := b.call.Send(req); err != nil {
		b.t.Fatal(err)
	}
	return id
}

// answers receives n answers, by correlation id.
func (b *batchCall) answers(n int) map[string]*api.BatchAppendResp {
	b.t.Helper()
	out := map[string]*api.BatchAppendResp{}
	for range n {
		resp, err := b.call.Recv()
		if err != nil {
			b.t.Fatal(err)
		}
		out[resp.GetCorrelationId().GetString_()] = resp
	}
	return out
}

// TestBatchAppendRunsAppendsConcurrently: the appends of one BatchAppend
// call to different streams are in flight together, as the .NET client's
// concurrent appends over its one call expect (and as the engine's group
// commit needs to write them together): an append held inside the engine
// does not hold back the appends to other streams sent after it.
func TestBatchAppendRunsAppendsConcurrently(t *testing.T) {
	g := newGatedEngine()
	ts := launch(t, g, server.Options{}, false)
	b := openBatch(t, ts.conn(t))
	held := b.send("held-1", -1, 1, 10)
	if s := <-g.arrived; s != "held-1" {
		t.Fatalf("held append to %s", s)
	}
	var free []string
	for i := range 5 {
		free = append(free, b.send(fmt.Sprintf("free-%d", i), -1, 1, 10))
	}
	// Sequential appends would wait for held-1 here, for ever.
	got := map[string]*api.BatchAppendResp{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		got = b.answers(len(free))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(g.release)
		<-done
		t.Fatal("the appends to other streams waited for the held one")
	}
	for _, id := range free {
		if got[id].GetSuccess() == nil {
			t.Errorf("append %s: %v", id, got[id])
		}
	}
	close(g.release)
	if resp := b.answers(1)[held]; resp.GetSuccess() == nil {
		t.Errorf("held append: %v", resp)
	}
}

// TestBatchAppendKeepsTheOrderOfAStream: appends to one stream sent one
// after the other without waiting for their answers are written in the
// order they were sent: each expects the revision the one before it
// leaves, and all succeed, even when the first is held in the engine.
func TestBatchAppendKeepsTheOrderOfAStream(t *testing.T) {
	g := newGatedEngine()
	ts := launch(t, g, server.Options{}, false)
	b := openBatch(t, ts.conn(t))
	var ids []string
	for v := int64(-1); v < 20; v++ {
		ids = append(ids, b.send("held-order", v, 1, 10))
	}
	if s := <-g.arrived; s != "held-order" {
		t.Fatalf("held append to %s", s)
	}
	// The others are queued behind it: none reaches the engine.
	select {
	case s := <-g.arrived:
		t.Fatalf("a second append to %s reached the engine before the first was written", s)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	got := b.answers(len(ids))
	for i, id := range ids {
		if ok := got[id].GetSuccess(); ok == nil || ok.GetCurrentRevision() != uint64(i) {
			t.Errorf("append %d: %v, want revision %d", i, got[id], i)
		}
	}
	if v, _ := ts.store.StreamVersion(context.Background(), "held-order"); v != int64(len(ids)-1) {
		t.Errorf("stream at version %d, want %d", v, len(ids)-1)
	}
}

// TestBatchAppendLimitCountsAppendsInFlight: MaxAppendBytes bounds what a
// call holds, appends in flight included; an append that fits once they
// are done waits for them rather than being refused.
func TestBatchAppendLimitCountsAppendsInFlight(t *testing.T) {
	g := newGatedEngine()
	ts := launch(t, g, server.Options{MaxAppendBytes: 4096}, false)
	b := openBatch(t, ts.conn(t))
	first := b.send("held-big", -1, 1, 3000)
	<-g.arrived
	var mu sync.Mutex
	second := ""
	answered := make(chan map[string]*api.BatchAppendResp, 1)
	go func() {
		mu.Lock()
		second = b.send("other", -1, 1, 3000) // 6000 bytes with the first
		mu.Unlock()
		answered <- b.answers(2)
	}()
	select {
	case got := <-answered:
		t.Fatalf("answered while the first append was held: %v", got)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	got := <-answered
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{first, second} {
		if got[id].GetSuccess() == nil {
			t.Errorf("append %s: %v, want success", id, got[id])
		}
	}
}
