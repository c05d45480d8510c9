package kurrentdbsvc

import (
	"context"
	"sync"
	"time"

	"github.com/cairndb/cairn"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
)

// batchStreams bounds the streams one BatchAppend call appends to at once;
// the call reads no more requests while it is reached.
const batchStreams = 128

// batchAppend is one correlation id of a BatchAppend call, complete.
type batchAppend struct {
	corr     *shared.UUID
	opts     *api.BatchAppendReq_Options
	deadline time.Time
	events   []cairn.EventData
	size     int // what it counts against MaxAppendBytes
}

// batchWriter runs the appends of one BatchAppend call: concurrently
// across streams, in arrival order within a stream, each answered on the
// call as it finishes.
//
// Locks: sendMu serialises the sends on the call (gRPC allows one sender
// at a time); mu guards queues, flight and err, and is a leaf. The
// receiving goroutine calls start, makeRoom, inFlight, send and wait;
// the appending goroutines call send and finish.
type batchWriter struct {
	ss   *streamsService
	ctx  context.Context
	call grpc.BidiStreamingServer[api.BatchAppendReq, api.BatchAppendResp]

	slots chan struct{} // a token per stream being appended to
	wg    sync.WaitGroup

	sendMu sync.Mutex

	mu     sync.Mutex
	room   *sync.Cond                // signalled when flight shrinks; uses mu
	queues map[string][]*batchAppend // per stream being appended to, the appends after the running one
	flight int                       // the bytes of the appends started and not answered
	err    error                     // the first failed send: the call is broken
}

func newBatchWriter(ctx context.Context, ss *streamsService, call grpc.BidiStreamingServer[api.BatchAppendReq, api.BatchAppendResp]) *batchWriter {
	w := &batchWriter{ss: ss, ctx: ctx, call: call, slots: make(chan struct{}, batchStreams), queues: map[string][]*batchAppend{}}
	w.room = sync.NewCond(&w.mu)
	return w
}

// start appends a after the appends to its stream that came before it,
// and returns at once, unless batchStreams streams are being appended to
// already: then it waits for one of them to end. It fails only when the
// call is broken.
func (w *batchWriter) start(a *batchAppend) error {
	stream := string(a.opts.GetStreamIdentifier().GetStreamName())
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return w.err
	}
	w.flight += a.size
	if q, running := w.queues[stream]; running {
		w.queues[stream] = append(q, a)
		w.mu.Unlock()
		return nil
	}
	w.queues[stream] = nil
	w.mu.Unlock()
	select {
	case w.slots <- struct{}{}:
	case <-w.ctx.Done():
		// The call is over; the append is answered with its error.
	}
	w.wg.Add(1)
	go w.run(stream, a)
	return nil
}

// run appends a, then the appends queued behind it for stream, until none
// is left.
func (w *batchWriter) run(stream string, a *batchAppend) {
	defer w.wg.Done()
	defer func() {
		select {
		case <-w.slots:
		default: // taken without a token, after the call ended
		}
	}()
	for a != nil {
		resp := w.ss.batch(w.ctx, a.corr, a.opts, a.deadline, a.events)
		// The answer is sent after the bytes are released: a client that
		// waits for it may then send as much again.
		w.mu.Lock()
		w.flight -= a.size
		w.room.Broadcast()
		w.mu.Unlock()
		if err := w.send(resp); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
		w.mu.Lock()
		a = nil
		if q := w.queues[stream]; len(q) > 0 {
			a, w.queues[stream] = q[0], q[1:]
		} else {
			delete(w.queues, stream)
		}
		w.mu.Unlock()
	}
}

// send answers on the call.
func (w *batchWriter) send(resp *api.BatchAppendResp) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	return w.call.Send(resp)
}

// inFlight returns the bytes of the appends started and not answered.
func (w *batchWriter) inFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flight
}

// makeRoom waits until the appends in flight fit beside held bytes within
// the limit, or none is in flight: what the call holds stays within
// MaxAppendBytes, and an append is refused for its size only when the
// correlation ids still open leave it no room.
func (w *batchWriter) makeRoom(held int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.flight > 0 && held+w.flight > w.ss.s.opts.MaxAppendBytes {
		w.room.Wait()
	}
}

// wait waits until every append started is answered, and returns the
// error of a failed answer.
func (w *batchWriter) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
