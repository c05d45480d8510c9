package cairnsvc

import (
	"context"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
	"github.com/cairndb/cairn/server/acl"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Reads by query and by index list. The Store reads both by count only, so
// the service reads them in chunks sized from the events seen so far, and
// stops once it holds max_bytes (or the message limit): a read holds about
// that much plus one chunk of events.

// chunk is the number of items to read next, given n items of bytes read
// so far, want bytes wanted and left items still allowed.
func chunk(n, bytes, want, left int) int {
	c := 16
	if n > 0 && bytes > 0 {
		c = max(1, (want-bytes)/max(1, bytes/n))
	}
	return min(c, left, cairnv1.MaxReadCount)
}

// readChunks reads at most count items and maxBytes with read, which reads
// at most n items after last (nil for the first read).
func readChunks[T any](count, maxBytes int, size func(T) int, read func(last *T, n int) ([]T, bool, error)) ([]T, error) {
	var out []T
	var last *T
	got := 0
	for len(out) < count && got < maxBytes {
		n := chunk(len(out), got, maxBytes, count-len(out))
		page, more, err := read(last, n)
		if err != nil {
			return nil, err
		}
		for _, it := range page {
			out = append(out, it)
			if got += size(it); got >= maxBytes {
				break
			}
		}
		if !more || len(page) < n {
			break // the end
		}
		last = &page[len(page)-1]
	}
	return out, nil
}

func (s *Service) ReadQuery(ctx context.Context, req *cairnv1.ReadQueryRequest) (*cairnv1.ReadResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
	count, maxBytes := readCount(req.GetCount()), s.readBytes(req.GetMaxBytes())
	q, dir := cairnv1.ToQuery(req.GetQuery()), cairn.Direction(req.GetDirection())
	if count <= 0 {
		// The Store says what is wrong.
		_, err := s.store.ReadQuery(ctx, q, req.GetFrom(), count, dir)
		return nil, cairnv1.Status(err)
	}
	events, err := readChunks(count, maxBytes, cairn.EventBytes, func(last *cairn.Event, n int) ([]cairn.Event, bool, error) {
		from := req.GetFrom()
		switch {
		case last == nil:
		case dir == cairn.Forward:
			from = last.Position + 1
		case last.Position == 0:
			return nil, false, nil
		default:
			from = last.Position - 1
		}
		page, err := s.store.ReadQuery(ctx, q, from, n, dir)
		return page, true, err
	})
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return s.response(events, count, maxBytes)
}

func entryBytes(e cairn.IndexedEvent) int { return cairn.EventBytes(e.Event) }

func (s *Service) ReadIndex(ctx context.Context, req *cairnv1.ReadIndexRequest) (*cairnv1.ReadIndexResponse, error) {
	if err := s.allow(ctx, acl.Read, acl.AllStream); err != nil {
		return nil, err
	}
	count, maxBytes := readCount(req.GetCount()), s.readBytes(req.GetMaxBytes())
	key, dir := cairnv1.ToIndexKey(req.GetKey()), cairn.Direction(req.GetDirection())
	if count <= 0 {
		_, err := s.store.ReadIndex(ctx, key, req.GetFrom(), count, dir)
		return nil, cairnv1.Status(err)
	}
	entries, err := readChunks(count, maxBytes, entryBytes, func(last *cairn.IndexedEvent, n int) ([]cairn.IndexedEvent, bool, error) {
		from := req.GetFrom()
		switch {
		case last == nil:
		case dir == cairn.Forward:
			from = last.Number + 1
		case last.Number == 0:
			return nil, false, nil
		default:
			from = last.Number - 1
		}
		page, err := s.store.ReadIndex(ctx, key, from, n, dir)
		return page, true, err
	})
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	out := &cairnv1.ReadIndexResponse{}
	n := 0
	for _, e := range entries {
		n += entryBytes(e)
	}
	out.SizeLimited = len(entries) < count && len(entries) > 0 && n >= maxBytes
	room := s.limit - 16
	for i, e := range entries {
		pe := cairnv1.FromIndexedEvent(e)
		size := protowire.SizeTag(1) + protowire.SizeBytes(proto.Size(pe))
		if size > room {
			if i == 0 {
				return nil, status.Errorf(codes.ResourceExhausted,
					"the event at position %d (entry %d) takes %d bytes, more than the server's message limit of %d", e.Position, e.Number, size, s.limit)
			}
			out.SizeLimited = true
			break
		}
		room -= size
		out.Entries = append(out.Entries, pe)
	}
	return out, nil
}

func (s *Service) GetHead(ctx context.Context, _ *cairnv1.Empty) (*cairnv1.HeadResponse, error) {
	if err := s.allowUser(ctx); err != nil {
		return nil, err
	}
	head, ok, err := s.store.LastPosition(ctx)
	if err != nil {
		return nil, cairnv1.Status(err)
	}
	return &cairnv1.HeadResponse{HasEvents: ok, Position: head}, nil
}
