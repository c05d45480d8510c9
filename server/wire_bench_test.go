package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn/internal/cputime"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/server"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// BenchmarkWireAppend appends one event of 256 bytes per append from 64
// goroutines sharing one connection, each to a stream of its own with an
// exact expected revision, through the whole server (gRPC, TLS or not,
// authentication, metrics, the KurrentDB service) on the memory engine,
// as the official clients do: a v1 Append call per append ("append"), or
// every append on one BatchAppend call ("batch"), as the .NET client
// appends. Client and server share the process: allocs/op and
// cpu-us/append count both. Each op is one append.
//
//	go test -run '^$' -bench WireAppend -benchtime 20000x ./server
func BenchmarkWireAppend(b *testing.B) {
	for _, call := range []string{"append", "batch"} {
		for _, tls := range []bool{false, true} {
			name := call + "/plaintext"
			if tls {
				name = call + "/tls"
			}
			b.Run(name, func(b *testing.B) {
				ts := launch(b, memstore.New(), server.Options{}, tls)
				conn := ts.conn(b)
				var app func(ctx context.Context, stream string, expected int64) (int64, error)
				if call == "append" {
					app = v1Append(api.NewStreamsClient(conn))
				} else {
					app = batchAppend(b, conn)
				}
				if _, err := app(context.Background(), "warm", -1); err != nil {
					b.Fatal(err)
				}
				wireLoad(b, app)
			})
		}
	}
}

// wireLoad runs b.N appends over 64 goroutines and reports them.
func wireLoad(b *testing.B, app func(ctx context.Context, stream string, expected int64) (int64, error)) {
	const writers = 64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			stream := fmt.Sprintf("w-%d", w)
			v := int64(-1)
			for range n {
				nv, err := app(context.Background(), stream, v)
				if err != nil {
					errs[w] = err
					return
				}
				v = nv
			}
		})
	}
	wg.Wait()
	cpu := cputime.Process() - cpu0
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	if cpu0 >= 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/append")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

func proposedMessage() *api.AppendReq_ProposedMessage {
	return &api.AppendReq_ProposedMessage{
		Id:             &shared.UUID{Value: &shared.UUID_String_{String_: uuid.NewString()}},
		Metadata:       map[string]string{"type": "Bench", "content-type": "application/octet-stream"},
		CustomMetadata: []byte{},
		Data:           make([]byte, 256),
	}
}

// v1Append appends with a v1 Append call per append.
func v1Append(c api.StreamsClient) func(ctx context.Context, stream string, expected int64) (int64, error) {
	return func(ctx context.Context, stream string, expected int64) (int64, error) {
		opts := &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
		if expected < 0 {
			opts.ExpectedStreamRevision = &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}
		} else {
			opts.ExpectedStreamRevision = &api.AppendReq_Options_Revision{Revision: uint64(expected)}
		}
		call, err := c.Append(ctx)
		if err != nil {
			return 0, err
		}
		if err := call.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: opts}}); err != nil {
			return 0, err
		}
		if err := call.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: proposedMessage()}}); err != nil {
			return 0, err
		}
		resp, err := call.CloseAndRecv()
		if err != nil {
			return 0, err
		}
		ok := resp.GetSuccess()
		if ok == nil {
			return 0, fmt.Errorf("append to %s: %v", stream, resp)
		}
		return int64(ok.GetCurrentRevision()), nil
	}
}

// batchAppend appends over one BatchAppend call, answers matched by
// correlation id.
func batchAppend(b *testing.B, conn *grpc.ClientConn) func(ctx context.Context, stream string, expected int64) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	call, err := api.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex     // guards waiting; a leaf
	var sendMu sync.Mutex // serialises the sends
	waiting := map[string]chan *api.BatchAppendResp{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := call.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			ch := waiting[resp.GetCorrelationId().GetString_()]
			delete(waiting, resp.GetCorrelationId().GetString_())
			mu.Unlock()
			ch <- resp
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return func(ctx context.Context, stream string, expected int64) (int64, error) {
		id := uuid.NewString()
		opts := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
		if expected < 0 {
			opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
		} else {
			opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_StreamPosition{StreamPosition: uint64(expected)}
		}
		pm := proposedMessage()
		req := &api.BatchAppendReq{
			CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: id}},
			Options:       opts,
			ProposedMessages: []*api.BatchAppendReq_ProposedMessage{{
				Id: pm.Id, Metadata: pm.Metadata, CustomMetadata: pm.CustomMetadata, Data: pm.Data,
			}},
			IsFinal: true,
		}
		ch := make(chan *api.BatchAppendResp, 1)
		mu.Lock()
		waiting[id] = ch
		mu.Unlock()
		sendMu.Lock()
		err := call.Send(req)
		sendMu.Unlock()
		if err != nil {
			return 0, err
		}
		select {
		case resp := <-ch:
			ok := resp.GetSuccess()
			if ok == nil {
				return 0, fmt.Errorf("batch append to %s: %v", stream, resp.GetError())
			}
			return int64(ok.GetCurrentRevision()), nil
		case <-done:
			return 0, fmt.Errorf("batch append to %s: the call ended", stream)
		}
	}
}
