package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The three ways the wire workloads append: the official client's
// AppendToStream (the v1 Append call, an HTTP/2 stream per append); the
// same call made with the protocol's generated client, for a server
// without TLS, to which the official Go client sends no credentials; and
// BatchAppend, one bidirectional call that carries every append of a
// connection, told apart by correlation ids, as the .NET client appends.

// appender makes appends of events of 256 bytes to streams, with an exact
// expected version (-1: the stream must not exist), and returns the
// version of the stream after each.
type appender interface {
	append(ctx context.Context, stream string, expected int64, data [][]byte) (int64, error)
}

// wireType is the type of every event the wire workloads write.
const wireType = "Measured"

// clientAppender appends with the official client.
type clientAppender struct{ c *kurrentdb.Client }

func (a clientAppender) append(ctx context.Context, stream string, expected int64, data [][]byte) (int64, error) {
	var state kurrentdb.StreamState = kurrentdb.NoStream{}
	if expected >= 0 {
		state = kurrentdb.Revision(uint64(expected))
	}
	events := make([]kurrentdb.EventData, len(data))
	for i, d := range data {
		events[i] = kurrentdb.EventData{EventType: wireType, ContentType: kurrentdb.ContentTypeBinary, Data: d}
	}
	res, err := a.c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: state}, events...)
	if err != nil {
		return 0, err
	}
	return int64(res.NextExpectedVersion), nil
}

// proposed is the proposed message of an event, as the official clients
// send it.
func proposed(d []byte) *api.AppendReq_ProposedMessage {
	id := uuid.New()
	return &api.AppendReq_ProposedMessage{
		Id:             &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Metadata:       map[string]string{"type": wireType, "content-type": "application/octet-stream"},
		CustomMetadata: []byte{},
		Data:           d,
	}
}

// rawAppender makes the v1 Append call with the generated client.
type rawAppender struct{ c api.StreamsClient }

func (a rawAppender) append(ctx context.Context, stream string, expected int64, data [][]byte) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call, err := a.c.Append(ctx)
	if err != nil {
		return 0, err
	}
	opts := &api.AppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	if expected >= 0 {
		opts.ExpectedStreamRevision = &api.AppendReq_Options_Revision{Revision: uint64(expected)}
	} else {
		opts.ExpectedStreamRevision = &api.AppendReq_Options_NoStream{NoStream: &shared.Empty{}}
	}
	if err := call.Send(&api.AppendReq{Content: &api.AppendReq_Options_{Options: opts}}); err != nil {
		return 0, sendError(call, err)
	}
	for _, d := range data {
		if err := call.Send(&api.AppendReq{Content: &api.AppendReq_ProposedMessage_{ProposedMessage: proposed(d)}}); err != nil {
			return 0, sendError(call, err)
		}
	}
	resp, err := call.CloseAndRecv()
	if err != nil {
		return 0, err
	}
	switch r := resp.Result.(type) {
	case *api.AppendResp_Success_:
		return int64(r.Success.GetCurrentRevision()), nil
	case *api.AppendResp_WrongExpectedVersion_:
		return 0, fmt.Errorf("append to %q: wrong expected version: expected %d, the stream is at %d", stream, expected, r.WrongExpectedVersion.GetCurrentRevision())
	}
	return 0, fmt.Errorf("append to %q: an answer without a result", stream)
}

// sendError returns the status of a call whose send failed: gRPC reports
// io.EOF on the send, and the status on the receive.
func sendError(call grpc.ClientStream, err error) error {
	if errors.Is(err, io.EOF) {
		if rerr := call.RecvMsg(new(api.AppendResp)); rerr != nil {
			return rerr
		}
	}
	return err
}

// batchAppender multiplexes appends over one BatchAppend call: each send
// carries one append whole (options, events, final), and a goroutine reads
// the answers and hands each to the append waiting for its correlation id.
type batchAppender struct {
	call   grpc.BidiStreamingClient[api.BatchAppendReq, api.BatchAppendResp]
	cancel context.CancelFunc

	sendMu sync.Mutex // serialises sends on call

	mu      sync.Mutex // guards waiting and err; a leaf
	waiting map[uuid.UUID]chan *api.BatchAppendResp
	err     error // why the call ended
	done    chan struct{}
}

// newBatchAppender opens a BatchAppend call on conn.
func newBatchAppender(ctx context.Context, conn grpc.ClientConnInterface) (*batchAppender, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := api.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	b := &batchAppender{call: call, cancel: cancel, waiting: map[uuid.UUID]chan *api.BatchAppendResp{}, done: make(chan struct{})}
	go b.receive()
	return b, nil
}

func (b *batchAppender) receive() {
	defer close(b.done)
	for {
		resp, err := b.call.Recv()
		if err != nil {
			b.mu.Lock()
			b.err = err
			for _, ch := range b.waiting {
				close(ch)
			}
			b.waiting = nil
			b.mu.Unlock()
			return
		}
		id, err := uuid.Parse(resp.GetCorrelationId().GetString_())
		b.mu.Lock()
		ch := b.waiting[id]
		delete(b.waiting, id)
		b.mu.Unlock()
		if err == nil && ch != nil {
			ch <- resp
		}
	}
}

func (b *batchAppender) append(ctx context.Context, stream string, expected int64, data [][]byte) (int64, error) {
	id := uuid.New()
	ch := make(chan *api.BatchAppendResp, 1)
	b.mu.Lock()
	if b.waiting == nil {
		err := b.err
		b.mu.Unlock()
		return 0, fmt.Errorf("batch append: the call ended: %w", err)
	}
	b.waiting[id] = ch
	b.mu.Unlock()
	opts := &api.BatchAppendReq_Options{StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)}}
	if expected >= 0 {
		opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_StreamPosition{StreamPosition: uint64(expected)}
	} else {
		opts.ExpectedStreamPosition = &api.BatchAppendReq_Options_NoStream{NoStream: &emptypb.Empty{}}
	}
	req := &api.BatchAppendReq{
		CorrelationId: &shared.UUID{Value: &shared.UUID_String_{String_: id.String()}},
		Options:       opts,
		IsFinal:       true,
	}
	for _, d := range data {
		pm := proposed(d)
		req.ProposedMessages = append(req.ProposedMessages, &api.BatchAppendReq_ProposedMessage{
			Id: pm.Id, Metadata: pm.Metadata, CustomMetadata: pm.CustomMetadata, Data: pm.Data,
		})
	}
	b.sendMu.Lock()
	err := b.call.Send(req)
	b.sendMu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			b.mu.Lock()
			defer b.mu.Unlock()
			return 0, fmt.Errorf("batch append: the call ended: %w", b.err)
		}
		switch r := resp.Result.(type) {
		case *api.BatchAppendResp_Success_:
			return int64(r.Success.GetCurrentRevision()), nil
		case *api.BatchAppendResp_Error:
			return 0, fmt.Errorf("batch append to %q: %w", stream, status.ErrorProto(r.Error))
		}
		return 0, fmt.Errorf("batch append to %q: an answer without a result", stream)
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// close ends the call and waits for its reader.
func (b *batchAppender) close() {
	b.sendMu.Lock()
	// An error here means the call has ended already; the cancel below
	// ends it in any case.
	if err := b.call.CloseSend(); err != nil {
		b.cancel()
	}
	b.sendMu.Unlock()
	b.cancel()
	<-b.done
}
