package umadbsvc

import (
	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/umadbv1"
	"github.com/cairndb/cairn/server/acl"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// Read answers UmaDB's read: the events that match the query (all, without
// one) from start (inclusive; the first or, backwards, the last event
// without one), at most limit of them, in messages of batch_size events.
//
// A read that does not subscribe covers the log up to its head when the
// read began, and sends at least one message. Each message's head is, for
// a read with a limit, the position of the last event sent so far (none
// before the first), and otherwise the head of the log when the read
// began, as UmaDB reports them. A subscription reads forward, then follows
// the events appended after it caught up, until the client goes or its
// limit is reached; each message's head is its last event's position.
func (s *Service) Read(req *umadbv1.ReadRequest, stream grpc.ServerStreamingServer[umadbv1.ReadResponse]) error {
	ctx := stream.Context()
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return err
	}
	q := toQuery(req.GetQuery())
	if err := cairn.ValidateQuery("query", q); err != nil {
		return statusOf(err)
	}
	back, subscribe := req.GetBackwards(), req.GetSubscribe()
	if back && subscribe {
		return errorStatus(codes.InvalidArgument, umadbv1.ErrorResponse_INVALID_ARGUMENT, "a subscription reads forward: backwards and subscribe cannot be set together")
	}
	batch := int(req.GetBatchSize())
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	batch = min(batch, MaxBatchSize)
	limited, limit := req.Limit != nil, int(req.GetLimit())
	var lastSent *uint64 // the UmaDB position of the last event sent
	sent, messages := 0, 0
	send := func(events []cairn.Event, head *uint64) error {
		out := &umadbv1.ReadResponse{Events: make([]*umadbv1.SequencedEvent, len(events))}
		for i, e := range events {
			out.Events[i] = fromEvent(e)
		}
		if len(events) > 0 {
			lastSent = new(events[len(events)-1].Position + 1)
		}
		out.Head = head
		if limited {
			out.Head = lastSent
		}
		sent += len(events)
		messages++
		return stream.Send(out)
	}
	if limited && limit == 0 {
		return send(nil, nil)
	}
	dir := cairn.Forward
	if back {
		dir = cairn.Backward
	}
	// start is an UmaDB position: cairn's plus one.
	from := uint64(0)
	switch {
	case req.Start != nil && req.GetStart() > 0:
		from = req.GetStart() - 1
	case req.Start != nil && back:
		return send(nil, nil) // nothing is at or before position 0
	case back:
		from = cairn.LogEnd
	}
	if subscribe {
		return s.subscribe(stream, q, from, batch, limited, limit, send)
	}
	head, ok, err := s.store.LastPosition(ctx)
	if err != nil {
		return statusOf(err)
	}
	if !ok {
		return send(nil, nil)
	}
	umaHead := new(head + 1)
	if back {
		from = min(from, head)
	}
	for from <= head || back {
		n := batch
		if limited {
			n = min(n, limit-sent)
		}
		page, err := s.store.ReadQuery(ctx, q, from, n, dir)
		if err != nil {
			return statusOf(err)
		}
		end := len(page) < n
		if !back {
			// Events after the head were appended during the read.
			for len(page) > 0 && page[len(page)-1].Position > head {
				page, end = page[:len(page)-1], true
			}
		}
		if len(page) > 0 {
			if err := send(page, umaHead); err != nil {
				return err
			}
		}
		if end || (limited && sent >= limit) {
			break
		}
		last := page[len(page)-1].Position
		if back {
			if last == 0 {
				break
			}
			from = last - 1
		} else {
			from = last + 1
		}
	}
	if messages == 0 {
		return send(nil, umaHead)
	}
	return nil
}

// subscribe reads forward from from, then waits for new events and reads
// them, until the client goes or limit events were sent.
func (s *Service) subscribe(stream grpc.ServerStreamingServer[umadbv1.ReadResponse], q cairn.Query, from uint64, batch int, limited bool, limit int, send func([]cairn.Event, *uint64) error) error {
	ctx := stream.Context()
	for {
		n := batch
		if limited {
			n = min(n, limit) // limit counts down what is left
		}
		// Take the change signal before the read, so that an append
		// between the read and the wait is not missed.
		changed := s.store.Changes()
		page, err := s.store.ReadQuery(ctx, q, from, n, cairn.Forward)
		if err != nil {
			return statusOf(err)
		}
		if len(page) > 0 {
			last := page[len(page)-1].Position
			if err := send(page, new(last+1)); err != nil {
				return err
			}
			if limited {
				if limit -= len(page); limit <= 0 {
					return nil
				}
			}
			from = last + 1
			if len(page) == n {
				continue
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		case <-s.done:
			return errorStatus(codes.Unavailable, umadbv1.ErrorResponse_IO, "the server is shutting down")
		}
	}
}
