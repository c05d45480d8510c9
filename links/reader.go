package links

import (
	"context"
	"errors"
	"time"

	"github.com/cairndb/cairn"
)

// Options configure a [Reader]. The zero value is ready to use.
type Options struct {
	// Projections says which standard projections are enabled. Nil
	// enables all of them.
	Projections *Projections
	// Visible, when set, narrows what readers see of a stream beyond what
	// the Store returns (a server enforces KurrentDB's stream metadata
	// with it): the lowest version and the oldest creation time that
	// readers of the stream see. A link to an event outside it resolves
	// to nothing, as a link to a deleted event does.
	Visible func(ctx context.Context, stream string) (lowest int64, oldest time.Time, err error)
	// Readable, when set, says whether the reader of a request (its
	// context: a server asks its ACLs for the request's user) may read
	// stream. A link to an event of a stream it may not read, or to an
	// entry of a virtual stream it may not read, resolves to nothing,
	// the link alone, as a link to a deleted event does. Nil lets every
	// reader read every stream.
	Readable func(ctx context.Context, stream string) (bool, error)
}

// Reader reads streams as KurrentDB shows them: the streams of the
// standard projections are read from the index, and links are resolved on
// request. It is safe for concurrent use.
type Reader struct {
	store *cairn.Store
	opts  Options
}

// NewReader returns a Reader of store.
func NewReader(store *cairn.Store, opts Options) *Reader {
	return &Reader{store: store, opts: opts}
}

// Store returns the store r reads.
func (r *Reader) Store() *cairn.Store { return r.store }

// Page is what one read returns.
type Page struct {
	Events []Resolved
	// More says the read stopped before the end of the stream, at its
	// count or its byte limit: a read from after its last event may
	// return more now.
	More bool
}

// ReadStream reads at most count events of stream from version from in
// direction dir, and stops after the event that brings the bytes read
// (data and metadata, of links and their targets) to maxBytes, when
// maxBytes is positive. A backward read from [cairn.StreamEnd] starts at
// the last event. With resolve, links are resolved ([Resolved]).
//
// stream may be one of the standard projections' streams ([Virtual]): its
// events are read from the index, numbered as its entries, and are not in
// the log. While its projection is disabled only the entries of the events
// committed before it was disabled are there. A stream with no event, or a
// virtual stream with no entry there, gives an error matching
// [cairn.ErrStreamNotFound].
func (r *Reader) ReadStream(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction, resolve bool) (Page, error) {
	if key, ok := Virtual(stream); ok {
		return r.readVirtual(ctx, stream, key, from, count, maxBytes, dir, resolve)
	}
	var events []cairn.Event
	var err error
	if maxBytes > 0 {
		events, err = r.store.ReadStreamSized(ctx, stream, from, count, maxBytes, dir)
	} else {
		events, err = r.store.ReadStream(ctx, stream, from, count, dir)
	}
	if err != nil {
		return Page{}, err
	}
	more := len(events) >= count || (maxBytes > 0 && cairn.PageFull(events, count, maxBytes))
	if !resolve {
		return Page{Events: plain(events), More: more}, nil
	}
	res, err := r.Resolve(ctx, events)
	return Page{Events: res, More: more}, err
}

// plain wraps events that are not resolved.
func plain(events []cairn.Event) []Resolved {
	out := make([]Resolved, len(events))
	for i := range events {
		out[i].Event = events[i]
	}
	return out
}

// StreamVersion returns the version of the last event of stream, real or
// virtual, or an error matching [cairn.ErrStreamNotFound].
func (r *Reader) StreamVersion(ctx context.Context, stream string) (int64, error) {
	key, ok := Virtual(stream)
	if !ok {
		return r.store.StreamVersion(ctx, stream)
	}
	n, err := r.visibleEntries(ctx, key)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, cairn.NotFound("read", stream)
	}
	return n - 1, nil
}

// visibleEntries returns how many entries of the list key readers see:
// all of them, or those before the point at which its projection was
// disabled.
func (r *Reader) visibleEntries(ctx context.Context, key cairn.IndexKey) (int64, error) {
	if !fillable(key) {
		return 0, nil
	}
	if upto, capped := r.opts.Projections.upto(key.Kind); capped {
		return NumberAt(ctx, r.store, key, upto)
	}
	last, ok, err := lastEntry(ctx, r.store, key)
	if err != nil || !ok {
		return 0, err
	}
	return last.Number + 1, nil
}

func (r *Reader) readVirtual(ctx context.Context, stream string, key cairn.IndexKey, from int64, count, maxBytes int, dir cairn.Direction, resolve bool) (Page, error) {
	if !fillable(key) {
		return Page{}, cairn.NotFound("read", stream)
	}
	upto, capped := r.opts.Projections.upto(key.Kind)
	var entries []cairn.IndexedEvent
	more := false
	if dir == cairn.Forward {
		es, err := readIndex(ctx, r.store, key, from, count, cairn.Forward)
		if err != nil {
			return Page{}, err
		}
		more = len(es) >= count
		for i := range es {
			if capped && es[i].Position >= upto {
				es, more = es[:i], false
				break
			}
		}
		entries = es
	} else {
		start, none := from, false
		if capped {
			n, err := NumberAt(ctx, r.store, key, upto)
			if err != nil {
				return Page{}, err
			}
			if start == cairn.StreamEnd || start > n-1 {
				start, none = n-1, n == 0
			}
		}
		if !none {
			es, err := readIndex(ctx, r.store, key, start, count, cairn.Backward)
			if err != nil {
				return Page{}, err
			}
			entries = es
			more = len(es) >= count && es[len(es)-1].Number > 0
		}
	}
	if maxBytes > 0 {
		n := 0
		for i := range entries {
			if n += entryBytes(&entries[i], resolve); n >= maxBytes && i < len(entries)-1 {
				entries, more = entries[:i+1], true
				break
			}
		}
	}
	if len(entries) == 0 {
		exists, err := r.exists(ctx, key, upto, capped)
		if err != nil {
			return Page{}, err
		}
		if !exists {
			return Page{}, cairn.NotFound("read", stream)
		}
		return Page{}, nil
	}
	res, err := r.entries(ctx, stream, key, entries, resolve)
	return Page{Events: res, More: more}, err
}

// entryBytes is the size an entry adds to a page: its target's, when it is
// resolved; a link's few bytes otherwise.
func entryBytes(e *cairn.IndexedEvent, resolve bool) int {
	if resolve && e.Found {
		return cairn.EventBytes(e.Event) + len(e.Event.StreamID) + 21
	}
	return len(e.Event.StreamID) + 21
}

// exists reports whether the list key has an entry readers see.
func (r *Reader) exists(ctx context.Context, key cairn.IndexKey, upto uint64, capped bool) (bool, error) {
	es, err := readIndex(ctx, r.store, key, 0, 1, cairn.Forward)
	if err != nil {
		return false, err
	}
	return len(es) == 1 && (!capped || es[0].Position < upto), nil
}

// entries turns index entries into the events of the virtual stream, and
// resolves their links when resolve is set.
func (r *Reader) entries(ctx context.Context, stream string, key cairn.IndexKey, entries []cairn.IndexedEvent, resolve bool) ([]Resolved, error) {
	out := make([]Resolved, len(entries))
	vis := r.newVisibility()
	for i := range entries {
		e := &entries[i]
		out[i].Event = entryEvent(stream, key, e)
		if !resolve || !IsLink(&out[i].Event) {
			continue
		}
		out[i].Link = true
		var err error
		if key.Kind == cairn.IndexCategory && e.Found && IsLink(&e.Event) {
			out[i].Target, err = r.target(ctx, vis, &out[i].Event)
		} else if e.Found {
			var ok bool
			if ok, err = vis.sees(ctx, &e.Event); ok {
				t := e.Event
				out[i].Target = &t
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Resolve resolves the links among events read from the log or from a
// stream: each is returned with the event it names when it is a link
// ([Resolved]). It reads the store once per link, and once more per
// stream they name.
func (r *Reader) Resolve(ctx context.Context, events []cairn.Event) ([]Resolved, error) {
	out := plain(events)
	var vis *visibility
	for i := range out {
		if !IsLink(&out[i].Event) {
			continue
		}
		if vis == nil {
			vis = r.newVisibility()
		}
		out[i].Link = true
		t, err := r.target(ctx, vis, &out[i].Event)
		if err != nil {
			return nil, err
		}
		out[i].Target = t
	}
	return out, nil
}

// target returns the event that link names, or nil when readers of its
// stream do not see it. A link to an event of a virtual stream resolves to
// that stream's link or stream reference, as a link to a link does in
// KurrentDB: once.
func (r *Reader) target(ctx context.Context, vis *visibility, link *cairn.Event) (*cairn.Event, error) {
	stream, version, ok := Parse(link.Data)
	if !ok {
		return nil, nil
	}
	if _, virtual := Virtual(stream); virtual {
		if ok, err := vis.readable(ctx, stream); err != nil || !ok {
			return nil, err
		}
		p, err := r.ReadStream(ctx, stream, version, 1, 0, cairn.Forward, false)
		if err != nil {
			if errors.Is(err, cairn.ErrStreamNotFound) {
				return nil, nil
			}
			return nil, err
		}
		if len(p.Events) == 1 && p.Events[0].Event.Version == version {
			return &p.Events[0].Event, nil
		}
		return nil, nil
	}
	events, err := r.store.ReadStream(ctx, stream, version, 1, cairn.Forward)
	switch {
	case errors.Is(err, cairn.ErrStreamNotFound), errors.Is(err, cairn.ErrStreamDeleted), errors.Is(err, cairn.ErrInvalidArgument):
		return nil, nil
	case err != nil:
		return nil, err
	case len(events) == 0 || events[0].Version != version:
		return nil, nil
	}
	ok, err = vis.sees(ctx, &events[0])
	if err != nil || !ok {
		return nil, err
	}
	return &events[0], nil
}

// visibility remembers, for the streams of one page, which of their events
// readers see, and which streams the reader may read.
type visibility struct {
	r       *Reader
	streams map[string]streamView
	readers map[string]bool
}

type streamView struct {
	none   bool      // the stream is deleted (or never was)
	lowest int64     // the lowest version readers see
	oldest time.Time // the oldest creation time readers see
}

func (r *Reader) newVisibility() *visibility {
	return &visibility{r: r, streams: map[string]streamView{}, readers: map[string]bool{}}
}

// readable reports whether the reader may read stream (Options.Readable).
func (v *visibility) readable(ctx context.Context, stream string) (bool, error) {
	if v.r.opts.Readable == nil {
		return true, nil
	}
	ok, seen := v.readers[stream]
	if !seen {
		var err error
		if ok, err = v.r.opts.Readable(ctx, stream); err != nil {
			return false, err
		}
		v.readers[stream] = ok
	}
	return ok, nil
}

// sees reports whether the reader sees e now: it may read e's stream, the
// stream is not deleted, e is not truncated away, and the Visible option
// allows it.
func (v *visibility) sees(ctx context.Context, e *cairn.Event) (bool, error) {
	if ok, err := v.readable(ctx, e.StreamID); err != nil || !ok {
		return false, err
	}
	sv, ok := v.streams[e.StreamID]
	if !ok {
		first, err := v.r.store.ReadStream(ctx, e.StreamID, 0, 1, cairn.Forward)
		switch {
		case errors.Is(err, cairn.ErrStreamNotFound), errors.Is(err, cairn.ErrStreamDeleted):
			sv.none = true
		case err != nil:
			return false, err
		case len(first) == 0:
			sv.none = true
		default:
			sv.lowest = first[0].Version
		}
		if !sv.none && v.r.opts.Visible != nil {
			lowest, oldest, err := v.r.opts.Visible(ctx, e.StreamID)
			if err != nil {
				return false, err
			}
			sv.lowest, sv.oldest = max(sv.lowest, lowest), oldest
		}
		v.streams[e.StreamID] = sv
	}
	return !sv.none && e.Version >= sv.lowest && !e.Created.Before(sv.oldest), nil
}
