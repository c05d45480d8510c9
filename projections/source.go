package projections

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
)

// source reads the events a projection processes, in order, from a
// position. A position is a global position (logSource) or a version of
// one stream (streamSource).
//
// Categories and event types are read from the global log through a filter
// for now: category streams ($ce-<category>) and event type streams
// ($et-<type>) named by fromStream or fromStreams, and fromCategory, select
// the events of the log they would link to. An index of categories and
// types can replace the filter behind this interface without changing the
// positions a projection checkpoints, which stay global positions.
type source interface {
	// read scans at most limit events from position from and returns
	// those the projection selects, where to read next, and whether the
	// scan reached the end of what is durable.
	read(ctx context.Context, from uint64, limit int) (page, error)
	// stream names the stream whose versions are the positions, or ""
	// when positions are global positions.
	stream() string
	// head returns the position after the last event the source could
	// read now, for progress reports.
	head(ctx context.Context) (uint64, error)
}

type page struct {
	events []sourceEvent
	next   uint64
	atEnd  bool
}

// categoryOf returns the category of a stream: the part before the first
// '-', as KurrentDB's $by_category projection defines it by default; false
// when the stream has no '-'.
func categoryOf(stream string) (string, bool) {
	i := strings.IndexByte(stream, '-')
	if i <= 0 {
		return "", false
	}
	return stream[:i], true
}

// newSource returns the source of what spec selects. A query that keeps
// a state per stream and handles $deleted also gets the deletions of the
// streams it selects (see deletedEvent).
func newSource(store *cairn.Store, spec *querySpec) source {
	src := newEventSource(store, spec)
	if ls, ok := src.(*logSource); ok && spec.ByStream && spec.HandlesDeleted {
		ls.deleted = deletionMatcher(spec)
	}
	return src
}

// deletionMatcher returns which deleted streams a foreachStream query over
// the log sees the deletion of: those whose events it selects by stream
// or category (a stream of an event type source may hold other types).
func deletionMatcher(spec *querySpec) func(d cairn.Deletion) (string, bool) {
	var streams, cats []string
	for _, s := range spec.Streams {
		if c, ok := strings.CutPrefix(s, "$ce-"); ok {
			cats = append(cats, c)
		} else if !strings.HasPrefix(s, "$et-") {
			streams = append(streams, s)
		}
	}
	cats = append(cats, spec.Categories...)
	return func(d cairn.Deletion) (string, bool) {
		c, hasCat := categoryOf(d.Stream)
		switch {
		case spec.AllStreams:
			return c, !strings.HasPrefix(d.Stream, "$")
		case slices.Contains(streams, d.Stream):
			return "", true
		case hasCat && slices.Contains(cats, c) && userStream(d.Stream):
			return c, true
		}
		return "", false
	}
}

func newEventSource(store *cairn.Store, spec *querySpec) source {
	switch {
	case spec.AllStreams:
		return &logSource{store: store, match: func(e *cairn.Event) (string, bool) {
			return "", userStream(e.StreamID) && (spec.IncludeLinks || e.Type != typeLink)
		}}
	case len(spec.Categories) > 0:
		cats := slices.Clone(spec.Categories)
		return &logSource{store: store, match: func(e *cairn.Event) (string, bool) {
			c, ok := categoryOf(e.StreamID)
			if !ok || !slices.Contains(cats, c) || (!spec.IncludeLinks && e.Type == typeLink) {
				return "", false
			}
			return c, true
		}}
	case len(spec.Streams) == 1 && !virtualStream(spec.Streams[0]):
		return &streamSource{store: store, id: spec.Streams[0]}
	}
	var streams, cats, types []string
	for _, s := range spec.Streams {
		switch {
		case strings.HasPrefix(s, "$ce-"):
			cats = append(cats, s[len("$ce-"):])
		case strings.HasPrefix(s, "$et-"):
			types = append(types, s[len("$et-"):])
		default:
			streams = append(streams, s)
		}
	}
	return &logSource{store: store, match: func(e *cairn.Event) (string, bool) {
		if slices.Contains(streams, e.StreamID) {
			return "", true
		}
		if !spec.IncludeLinks && e.Type == typeLink {
			return "", false
		}
		if c, ok := categoryOf(e.StreamID); ok && slices.Contains(cats, c) && userStream(e.StreamID) {
			return c, true
		}
		return "", slices.Contains(types, e.Type) && userStream(e.StreamID)
	}}
}

// virtualStream reports whether a stream named in a query is one of
// KurrentDB's standard projection streams that cairn reads from the log.
func virtualStream(s string) bool {
	return strings.HasPrefix(s, "$ce-") || strings.HasPrefix(s, "$et-")
}

// userStream reports whether fromAll passes the events of stream: streams
// applications write, and their metadata streams, as in KurrentDB.
func userStream(stream string) bool {
	if !strings.HasPrefix(stream, "$") {
		return true
	}
	target, ok := strings.CutPrefix(stream, "$$")
	return ok && target != "" && !strings.HasPrefix(target, "$")
}

// logSource reads the global log and keeps what match selects, and the
// deletions (cairn.Deletion records) of the streams deleted selects, when
// it is set.
type logSource struct {
	store   *cairn.Store
	match   func(e *cairn.Event) (category string, ok bool)
	deleted func(d cairn.Deletion) (category string, ok bool)
}

func (s *logSource) stream() string { return "" }

func (s *logSource) read(ctx context.Context, from uint64, limit int) (page, error) {
	evs, err := s.store.ReadAll(ctx, from, limit, cairn.Forward)
	if err != nil {
		return page{}, err
	}
	p := page{next: from, atEnd: len(evs) < limit}
	for i := range evs {
		e := &evs[i]
		p.next = e.Position + 1
		if s.deleted != nil {
			if d, ok := cairn.ParseDeletion(e); ok {
				if c, ok := s.deleted(d); ok {
					p.events = append(p.events, deletedEvent(e, d, c))
				}
				continue
			}
		}
		if c, ok := s.match(e); ok {
			p.events = append(p.events, sourceEvent{Event: *e, pos: e.Position, category: c})
		}
	}
	return p, nil
}

func (s *logSource) head(ctx context.Context) (uint64, error) {
	if h, ok := s.store.Head(); ok {
		return h + 1, nil
	}
	last, err := s.store.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil || len(last) == 0 {
		return 0, err
	}
	return last[0].Position + 1, nil
}

// streamSource reads one stream by version, resolving the links in it to
// the events they point to, as KurrentDB does for fromStream.
type streamSource struct {
	store *cairn.Store
	id    string
}

func (s *streamSource) stream() string { return s.id }

func (s *streamSource) read(ctx context.Context, from uint64, limit int) (page, error) {
	evs, err := s.store.ReadStream(ctx, s.id, int64(from), limit, cairn.Forward)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return page{next: from, atEnd: true}, nil
	}
	if err != nil {
		return page{}, err
	}
	p := page{next: from, atEnd: len(evs) < limit}
	for i := range evs {
		e := evs[i]
		p.next = uint64(e.Version) + 1
		if e.Type != typeLink {
			p.events = append(p.events, sourceEvent{Event: e, pos: uint64(e.Version)})
			continue
		}
		target, ok, err := resolveLink(ctx, s.store, e.Data)
		if err != nil {
			return page{}, err
		}
		if ok {
			link := e
			p.events = append(p.events, sourceEvent{Event: target, pos: uint64(e.Version), link: &link})
		}
	}
	return p, nil
}

func (s *streamSource) head(ctx context.Context) (uint64, error) {
	v, err := s.store.StreamVersion(ctx, s.id)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return uint64(v) + 1, nil
}

// resolveLink reads the event a link's data ("<version>@<stream>") points
// to; false when it is malformed or its target is gone.
func resolveLink(ctx context.Context, store *cairn.Store, data []byte) (cairn.Event, bool, error) {
	num, stream, ok := strings.Cut(string(data), "@")
	if !ok || stream == "" {
		return cairn.Event{}, false, nil
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 {
		return cairn.Event{}, false, nil
	}
	evs, err := store.ReadStream(ctx, stream, v, 1, cairn.Forward)
	switch {
	case errors.Is(err, cairn.ErrStreamNotFound), errors.Is(err, cairn.ErrStreamDeleted), errors.Is(err, cairn.ErrInvalidArgument):
		return cairn.Event{}, false, nil
	case err != nil:
		return cairn.Event{}, false, err
	case len(evs) == 0 || evs[0].Version != v:
		return cairn.Event{}, false, nil
	}
	return evs[0], true, nil
}
