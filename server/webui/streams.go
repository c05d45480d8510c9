package webui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/cairndb/cairn/server/acl"
	"github.com/cairndb/cairn/server/auth"
)

// The stream browser: the list of streams, with a search; a stream (or
// $all) a page at a time, forwards or backwards; an event with its data and
// metadata. Listing streams needs the right to read $all, as cairn.v1's
// ListStreams does: the list tells what every stream is called. A stream
// needs the right to read it.

const (
	// streamsPerPage is how many streams a page of the list shows.
	streamsPerPage = 50
	// streamsScanned bounds the stream ids one page of a search reads;
	// the page then offers to search on.
	streamsScanned = 5000
	// defaultCount and maxCount are the events a page of a stream shows
	// by default and at most.
	defaultCount = 20
	maxCount     = 200
	// pageBytes bounds the data and metadata one page of a stream reads.
	pageBytes = 4 << 20
	// previewRunes bounds the glimpse of an event's data in a list.
	previewRunes = 120
)

type streamRow struct {
	ID   string
	Last int64 // the version of its last event; -1 when unknown
}

type streamsData struct {
	Query   string
	System  bool
	After   string
	Rows    []streamRow
	Next    string // the page after this one, "" at the end
	Scanned int
	// Searched says the page stopped at streamsScanned before it found
	// streamsPerPage matches.
	Searched bool
}

func (u *UI) streams(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ctx := r.Context()
	if err := u.allowRead(ctx, p, acl.AllStream); err != nil {
		u.fail(w, r, p, 0, fmt.Errorf("listing the streams needs the right to read $all: %w", err))
		return
	}
	q := r.URL.Query()
	if open := q.Get("open"); open != "" {
		http.Redirect(w, r, streamURL(open, -1, cairn.Backward, defaultCount), http.StatusSeeOther)
		return
	}
	d := streamsData{Query: q.Get("q"), System: q.Get("system") == "1", After: q.Get("after")}
	after := d.After
	const batch = 500
scan:
	for {
		ids, err := u.host.Store.Backend().ListStreams(ctx, after, batch)
		if err != nil {
			u.fail(w, r, p, 0, err)
			return
		}
		for _, id := range ids {
			d.Scanned++
			after = id
			if (d.System || !acl.IsSystemStream(id)) && strings.Contains(id, d.Query) {
				d.Rows = append(d.Rows, streamRow{ID: id, Last: -1})
				if len(d.Rows) == streamsPerPage {
					d.Next = id
					break scan
				}
			}
			if d.Scanned >= streamsScanned {
				d.Next, d.Searched = id, true
				break scan
			}
		}
		if len(ids) < batch {
			break
		}
	}
	for i := range d.Rows {
		if v, err := u.host.Store.StreamVersion(ctx, d.Rows[i].ID); err == nil {
			d.Rows[i].Last = v
		}
	}
	u.render(w, r, http.StatusOK, "streams", p, "Streams", d)
}

// eventRow is an event in a page of a stream or of the log.
type eventRow struct {
	Number   int64 // its version in the stream read, its position in $all
	Stream   string
	Version  int64
	Position uint64
	Type     string
	Created  time.Time
	Bytes    int
	Preview  string
	// Link says the event is a link; Target is the event it names when it
	// was found and may be read, TargetRef what its data names.
	Link      bool
	Target    *eventRow
	TargetRef string
}

type streamData struct {
	ID    string
	All   bool
	Dir   string
	Count int
	Rows  []eventRow
	// Last is the number of the stream's last event, -1 when unknown.
	Last int64
	// Newer, Older, First and End are the URLs of the pages around this
	// one; "" when there is none.
	Prev, Next, First, End string
	PrevLabel, NextLabel   string
	// Meta is the stream's metadata stream, "" for $all and metadata
	// streams.
	Meta string
}

// streamParams are a stream page's request.
type streamParams struct {
	id    string
	from  int64 // -1: the end (backward) or the start (forward)
	dir   cairn.Direction
	count int
}

func parseStreamParams(q url.Values) (streamParams, error) {
	sp := streamParams{id: q.Get("id"), from: -1, dir: cairn.Backward, count: defaultCount}
	if sp.id == "" {
		return sp, badInput("which stream? give ?id=")
	}
	switch q.Get("dir") {
	case "", "backward":
	case "forward":
		sp.dir = cairn.Forward
	default:
		return sp, badInput("dir %q: want forward or backward", q.Get("dir"))
	}
	if s := q.Get("from"); s != "" && s != "end" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return sp, badInput("from %q: want a number from 0, or end", s)
		}
		sp.from = n
	}
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxCount {
			return sp, badInput("count %q: want a number from 1 to %d", s, maxCount)
		}
		sp.count = n
	}
	return sp, nil
}

func streamURL(id string, from int64, dir cairn.Direction, count int) string {
	v := url.Values{"id": {id}, "dir": {dir.String()}}
	if from >= 0 {
		v.Set("from", strconv.FormatInt(from, 10))
	}
	if count != defaultCount {
		v.Set("count", strconv.Itoa(count))
	}
	return Path + "stream?" + v.Encode()
}

func (u *UI) stream(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ctx := r.Context()
	sp, err := parseStreamParams(r.URL.Query())
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	if err := u.allowRead(ctx, p, sp.id); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	d := streamData{ID: sp.id, All: sp.id == acl.AllStream, Dir: sp.dir.String(), Count: sp.count, Last: -1}
	page, err := u.readPage(ctx, sp)
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	if d.Last, err = u.lastNumber(ctx, sp.id); err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	for i := range page.Events {
		d.Rows = append(d.Rows, u.row(ctx, p, &page.Events[i], d.All))
	}
	if !d.All && !strings.HasPrefix(sp.id, "$$") {
		d.Meta = "$$" + sp.id
	}
	d.First = streamURL(sp.id, 0, cairn.Forward, sp.count)
	d.End = streamURL(sp.id, -1, cairn.Backward, sp.count)
	if n := len(d.Rows); n > 0 {
		first, last := d.Rows[0].Number, d.Rows[n-1].Number
		if sp.dir == cairn.Forward {
			d.PrevLabel, d.NextLabel = "← Earlier", "Later →"
			if first > 0 {
				d.Prev = streamURL(sp.id, max(first-int64(sp.count), 0), cairn.Forward, sp.count)
			}
			if page.More {
				d.Next = streamURL(sp.id, last+1, cairn.Forward, sp.count)
			}
		} else {
			d.PrevLabel, d.NextLabel = "← Newer", "Older →"
			if first < d.Last {
				from := first + int64(sp.count)
				if from >= d.Last {
					from = -1
				}
				d.Prev = streamURL(sp.id, from, cairn.Backward, sp.count)
			}
			if page.More && last > 0 {
				d.Next = streamURL(sp.id, last-1, cairn.Backward, sp.count)
			}
		}
	}
	u.render(w, r, http.StatusOK, "stream", p, sp.id, d)
}

// readPage reads a page of a stream, resolving links, or of $all.
func (u *UI) readPage(ctx context.Context, sp streamParams) (links.Page, error) {
	if sp.id != acl.AllStream {
		from := sp.from
		if from < 0 && sp.dir == cairn.Forward {
			from = 0
		}
		return u.links.ReadStream(ctx, sp.id, from, sp.count, pageBytes, sp.dir, true)
	}
	from := uint64(sp.from)
	if sp.from < 0 {
		from = 0
		if sp.dir == cairn.Backward {
			from = cairn.LogEnd
		}
	}
	events, err := u.host.Store.ReadAllSized(ctx, from, sp.count, pageBytes, sp.dir)
	if err != nil {
		return links.Page{}, err
	}
	res, err := u.links.Resolve(ctx, events)
	return links.Page{Events: res, More: cairn.PageFull(events, sp.count, pageBytes)}, err
}

// lastNumber returns the number of the last event of a stream (its
// version) or of $all (its position), -1 when there is none.
func (u *UI) lastNumber(ctx context.Context, stream string) (int64, error) {
	if stream == acl.AllStream {
		last, ok, err := u.host.Store.LastPosition(ctx)
		if err != nil || !ok {
			return -1, err
		}
		return int64(last), nil
	}
	v, err := u.links.StreamVersion(ctx, stream)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return -1, nil
	}
	return v, err
}

// row describes a read event; a link's target is shown only to a user who
// may read its stream.
func (u *UI) row(ctx context.Context, p auth.Principal, res *links.Resolved, all bool) eventRow {
	row := plainRow(&res.Event, all)
	if !res.Link && !links.IsLink(&res.Event) {
		return row
	}
	row.Link = true
	if stream, version, ok := links.Parse(res.Event.Data); ok {
		row.TargetRef = fmt.Sprintf("%d@%s", version, stream)
	}
	if res.Target != nil && u.allowRead(ctx, p, res.Target.StreamID) == nil {
		t := plainRow(res.Target, false)
		row.Target = &t
	}
	return row
}

func plainRow(e *cairn.Event, all bool) eventRow {
	row := eventRow{
		Number:   e.Version,
		Stream:   e.StreamID,
		Version:  e.Version,
		Position: e.Position,
		Type:     e.Type,
		Created:  e.Created,
		Bytes:    cairn.EventBytes(*e),
		Preview:  preview(e.Data, previewRunes),
	}
	if all {
		row.Number = int64(e.Position)
	}
	return row
}

type eventData struct {
	Row      eventRow
	ID       string
	Content  string
	Tags     []string
	Data     shown
	Metadata shown
	// Prev and Next are the events before and after it in its stream.
	Prev, Next string
}

func eventURL(stream string, version int64) string {
	return Path + "event?" + url.Values{"stream": {stream}, "version": {strconv.FormatInt(version, 10)}}.Encode()
}

// event shows one event: ?stream=&version=, or ?position= for one of
// $all's.
func (u *UI) event(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	ctx := r.Context()
	q := r.URL.Query()
	stream := q.Get("stream")
	var (
		e   *links.Resolved
		err error
	)
	if pos := q.Get("position"); pos != "" {
		stream = acl.AllStream
		e, err = u.eventAt(ctx, p, pos)
	} else {
		e, err = u.eventOf(ctx, p, stream, q.Get("version"))
	}
	if err != nil {
		u.fail(w, r, p, 0, err)
		return
	}
	d := eventData{
		Row:      u.row(ctx, p, e, false),
		ID:       e.Event.ID.String(),
		Content:  e.Event.ContentType.String(),
		Tags:     e.Event.Tags,
		Data:     show(e.Event.Data),
		Metadata: show(e.Event.Metadata),
	}
	if stream != acl.AllStream {
		if e.Event.Version > 0 {
			d.Prev = eventURL(stream, e.Event.Version-1)
		}
		d.Next = eventURL(stream, e.Event.Version+1)
	}
	u.render(w, r, http.StatusOK, "event", p, fmt.Sprintf("%s #%d", e.Event.StreamID, e.Event.Version), d)
}

func (u *UI) eventOf(ctx context.Context, p auth.Principal, stream, version string) (*links.Resolved, error) {
	if stream == "" {
		return nil, badInput("which stream? give ?stream=")
	}
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil || v < 0 {
		return nil, badInput("version %q: want a number from 0", version)
	}
	if err := u.allowRead(ctx, p, stream); err != nil {
		return nil, err
	}
	page, err := u.links.ReadStream(ctx, stream, v, 1, 0, cairn.Forward, true)
	if err != nil {
		return nil, err
	}
	if len(page.Events) == 0 || page.Events[0].Event.Version != v {
		return nil, fmt.Errorf("%w: %s has no event %d", errNoEvent, stream, v)
	}
	return &page.Events[0], nil
}

func (u *UI) eventAt(ctx context.Context, p auth.Principal, position string) (*links.Resolved, error) {
	pos, err := strconv.ParseUint(position, 10, 64)
	if err != nil {
		return nil, badInput("position %q: want a number from 0", position)
	}
	if err := u.allowRead(ctx, p, acl.AllStream); err != nil {
		return nil, err
	}
	events, err := u.host.Store.ReadAll(ctx, pos, 1, cairn.Forward)
	if err != nil {
		return nil, err
	}
	if len(events) == 0 || events[0].Position != pos {
		return nil, fmt.Errorf("%w: $all has no event at position %d", errNoEvent, pos)
	}
	res, err := u.links.Resolve(ctx, events)
	if err != nil {
		return nil, err
	}
	return &res[0], nil
}
