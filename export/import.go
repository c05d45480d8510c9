package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// PlaceholderType is the type of the events [Import] writes below the first
// exported version of a stream whose first versions were truncated and
// compacted away in the source (see the package documentation).
const PlaceholderType = "$import-placeholder"

// placeholderSpace is the namespace of the placeholders' ids, which are
// derived from the stream and version, so that an import run again writes
// the same ones.
var placeholderSpace = uuid.MustParse("7b0f4f6e-4a0f-4f4e-9c55-8d1b2f9c0c7e")

// MaxLineBytes is the longest line Import reads: an event of the largest
// size the Store accepts, in base64, with room to spare.
const MaxLineBytes = 64 << 20

// ImportOptions tune an import. The zero value works.
type ImportOptions struct {
	// BatchEvents is the most events appended in one atomic batch (default
	// 1000). An import run again after an interruption is fastest with the
	// same value: its batches are then recognised whole.
	BatchEvents int
	// BatchBytes is the most data and metadata bytes in one batch (default
	// 4 MiB), unless one event alone is larger.
	BatchBytes int
	// Progress, when set, is called for each line read with the number of
	// events it holds (0 or 1) and its size.
	Progress func(events, bytes int64)
}

// Import reads an export from r and appends its events to s, then
// truncates, deletes and tombstones streams as the export's stream states
// say. It is idempotent by event id: see the package documentation.
//
// An export cut short (no end record) is refused once its complete batches
// are imported, before any stream is truncated or deleted; so is a line that
// is not part of an export, with its line number.
func Import(ctx context.Context, s *cairn.Store, r io.Reader, opts ImportOptions) (Stats, error) {
	if opts.BatchEvents <= 0 {
		opts.BatchEvents = 1000
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = 4 << 20
	}
	im := &importer{
		s: s.System(), opts: opts,
		streams: map[string]*streamImport{},
		win:     window{index: map[string]int{}},
	}
	err := im.run(ctx, bufio.NewReaderSize(r, 256<<10))
	return im.st, err
}

type importer struct {
	s       *cairn.Store // the system view: metadata streams ($$stream) are written too
	opts    ImportOptions
	streams map[string]*streamImport
	finals  []StreamState // streams to truncate, delete or tombstone at the end
	win     window
	st      Stats
	lineNo  int
}

// streamImport is what the import knows of a stream.
type streamImport struct {
	state StreamState
	next  int64 // the version the stream's next event line must have; -1 before the first
}

// request is one stream's part of a batch: events with consecutive
// versions from first.
type request struct {
	stream string
	first  int64
	events []cairn.EventData
}

// window gathers the requests of the next batch: each stream at most once
// (the Store refuses a stream twice in a batch), in the export's order.
type window struct {
	reqs   []request
	index  map[string]int // stream → index in reqs
	events int
	bytes  int
}

func (im *importer) run(ctx context.Context, br *bufio.Reader) error {
	sawHeader := false
	for {
		raw, err := readLine(br)
		if err == io.EOF {
			break
		}
		im.lineNo++
		if err != nil {
			return im.errorf("%w", err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var ln line
		if err := json.Unmarshal(raw, &ln); err != nil {
			return im.errorf("not a JSON object: %w", err)
		}
		if !sawHeader {
			if ln.Header == nil {
				return im.errorf("not a cairn export: the first line is not a cairn_export header")
			}
			if ln.Header.Format > Format || ln.Header.Format < 1 {
				return im.errorf("format %d: this cairn reads format %d", ln.Header.Format, Format)
			}
			sawHeader = true
			im.progress(0, len(raw))
			continue
		}
		switch {
		case ln.Header != nil:
			return im.errorf("a second cairn_export header")
		case ln.State != nil:
			err = im.state(*ln.State)
		case ln.End != nil:
			if err := im.end(ctx, *ln.End); err != nil {
				return err
			}
			im.progress(0, len(raw))
			for {
				rest, err := readLine(br)
				if err == io.EOF {
					return nil
				}
				im.lineNo++
				if err != nil || len(bytes.TrimSpace(rest)) > 0 {
					return im.errorf("lines after the end record")
				}
			}
		default:
			err = im.event(ctx, ln.Event)
		}
		if err != nil {
			return err
		}
		n := 0
		if ln.State == nil {
			n = 1
		}
		im.progress(n, len(raw))
	}
	if !sawHeader {
		return errors.New("import: the input is empty: not a cairn export")
	}
	return fmt.Errorf("import: the export ends at line %d without its end record: it was cut short; the events of its complete batches are imported, no stream was truncated or deleted; import the complete export again", im.lineNo)
}

func (im *importer) progress(events, bytes int) {
	if im.opts.Progress != nil {
		im.opts.Progress(int64(events), int64(bytes))
	}
}

// readLine returns the next line, without its newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		part, err := br.ReadSlice('\n')
		if len(out)+len(part) > MaxLineBytes {
			return nil, fmt.Errorf("a line longer than %d bytes", MaxLineBytes)
		}
		out = append(out, part...)
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(out) > 0:
			return out, nil
		case err != nil:
			return nil, err
		}
		return out[:len(out)-1], nil
	}
}

func (im *importer) errorf(format string, args ...any) error {
	return fmt.Errorf("import: line %d: %w", im.lineNo, fmt.Errorf(format, args...))
}

// state records a stream's state, which its events follow.
func (im *importer) state(st StreamState) error {
	if st.Stream == "" {
		return im.errorf("a stream_state without a stream")
	}
	switch st.State {
	case StateLive, StateDeleted, StateTombstoned:
	default:
		return im.errorf("stream %q: unknown state %q", st.Stream, st.State)
	}
	if st.FirstVersion < 0 {
		return im.errorf("stream %q: first_version %d is negative", st.Stream, st.FirstVersion)
	}
	if im.streams[st.Stream] != nil {
		return im.errorf("stream %q: a second stream_state", st.Stream)
	}
	im.streams[st.Stream] = &streamImport{state: st, next: -1}
	im.st.Streams++
	return nil
}

// event adds an event line to the batch, after placeholders for the
// versions the export lacks below a truncated stream's first event.
func (im *importer) event(ctx context.Context, e Event) error {
	d, err := e.EventData()
	if err != nil {
		return im.errorf("stream %q version %d: %w", e.Stream, e.Version, err)
	}
	if e.Stream == "" {
		return im.errorf("an event without a stream")
	}
	im.st.Events++
	sp := im.streams[e.Stream]
	if sp == nil { // no stream_state: a live stream, from version 0
		sp = &streamImport{state: StreamState{Stream: e.Stream, State: StateLive}, next: -1}
		im.streams[e.Stream] = sp
	}
	if sp.next < 0 {
		st := sp.state
		if e.Version > 0 && st.State == StateLive && st.FirstVersion < e.Version {
			return im.errorf("stream %q starts at version %d, but it is not truncated (first_version %d): versions %d to %d are missing",
				e.Stream, e.Version, st.FirstVersion, st.FirstVersion, e.Version-1)
		}
		if st.State != StateLive || st.FirstVersion > 0 {
			im.finals = append(im.finals, st)
		}
		for v := int64(0); v < e.Version; v++ {
			if err := im.add(ctx, e.Stream, v, placeholder(e.Stream, v)); err != nil {
				return err
			}
			im.st.Placeholders++
		}
	} else if e.Version != sp.next {
		return im.errorf("stream %q: version %d follows version %d", e.Stream, e.Version, sp.next-1)
	}
	sp.next = e.Version + 1
	return im.add(ctx, e.Stream, e.Version, d)
}

// placeholder returns the event that stands for version v of stream, which
// the export lacks.
func placeholder(stream string, v int64) cairn.EventData {
	return cairn.EventData{
		ID:          uuid.NewSHA1(placeholderSpace, []byte(stream+"\x00"+strconv.FormatInt(v, 10))),
		Type:        PlaceholderType,
		ContentType: cairn.ContentBinary,
	}
}

// add puts an event in the window, first appending the window when the
// event cannot join it.
func (im *importer) add(ctx context.Context, stream string, version int64, d cairn.EventData) error {
	w := &im.win
	size := len(d.Data) + len(d.Metadata)
	if len(w.reqs) > 0 {
		i, inWindow := w.index[stream]
		if (inWindow && i != len(w.reqs)-1) || w.bytes+size > im.opts.BatchBytes {
			if err := im.flush(ctx); err != nil {
				return err
			}
		}
	}
	if n := len(w.reqs); n > 0 && w.reqs[n-1].stream == stream {
		w.reqs[n-1].events = append(w.reqs[n-1].events, d)
	} else {
		w.index[stream] = len(w.reqs)
		w.reqs = append(w.reqs, request{stream: stream, first: version, events: []cairn.EventData{d}})
	}
	w.events++
	w.bytes += size
	if w.events >= im.opts.BatchEvents || w.bytes >= im.opts.BatchBytes {
		return im.flush(ctx)
	}
	return nil
}

// expectedFor returns the expectation of an append whose first event has
// version first: the exact version before it.
func expectedFor(first int64) cairn.ExpectedVersion {
	if first == 0 {
		return cairn.NoStream
	}
	return cairn.Exact(first - 1)
}

// flush appends the window: one atomic batch, or, when the batch fails
// because part of it is already in the target, request by request.
func (im *importer) flush(ctx context.Context) error {
	w := &im.win
	reqs := w.reqs
	w.reqs, w.events, w.bytes = nil, 0, 0
	clear(w.index)
	if len(reqs) == 0 {
		return nil
	}
	batch := make([]cairn.AppendRequest, len(reqs))
	for i, r := range reqs {
		batch[i] = cairn.AppendRequest{Stream: r.stream, Expected: expectedFor(r.first), Events: r.events}
	}
	_, err := im.s.AppendBatch(ctx, batch...)
	if err == nil {
		return nil
	}
	var be *cairn.BatchError
	if !errors.As(err, &be) && !recoverable(err) {
		return fmt.Errorf("import: append a batch of %d streams before line %d: %w", len(reqs), im.lineNo, err)
	}
	for _, r := range reqs {
		if err := im.appendOne(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// recoverable reports whether a failed append may be part of the export
// that an earlier import already wrote.
func recoverable(err error) bool {
	return errors.Is(err, cairn.ErrDuplicateEvent) || errors.Is(err, cairn.ErrWrongExpectedVersion) || errors.Is(err, cairn.ErrStreamDeleted)
}

// appendOne appends one request alone, and when the target already holds
// part of it, checks that part and appends the rest.
func (im *importer) appendOne(ctx context.Context, r request) error {
	err := im.append(ctx, r.stream, expectedFor(r.first), r.events)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cairn.ErrStreamDeleted) && im.tombstoned(r.stream):
		return nil // tombstoned by an earlier run, as the export says
	case errors.Is(err, cairn.ErrDuplicateEvent), errors.Is(err, cairn.ErrWrongExpectedVersion):
		return im.reconcile(ctx, r)
	}
	return im.requestError(r, err)
}

func (im *importer) tombstoned(stream string) bool {
	sp := im.streams[stream]
	return sp != nil && sp.state.State == StateTombstoned
}

func (im *importer) requestError(r request, err error) error {
	return fmt.Errorf("import: stream %q versions %d to %d: %w", r.stream, r.first, r.first+int64(len(r.events))-1, err)
}

// reconcile handles a request the target refused: it compares the events
// the target holds at the request's versions with the export's, event id by
// event id, and appends those it lacks.
func (im *importer) reconcile(ctx context.Context, r request) error {
	cur, err := im.s.StreamVersion(ctx, r.stream)
	switch {
	case errors.Is(err, cairn.ErrStreamNotFound):
		cur = -1
	case errors.Is(err, cairn.ErrStreamDeleted) && im.tombstoned(r.stream):
		return nil
	case err != nil:
		return im.requestError(r, err)
	}
	last := r.first + int64(len(r.events)) - 1
	if cur < r.first-1 {
		return im.requestError(r, fmt.Errorf("the target stream is at version %d: it lacks versions %d to %d, which are not in this export (or the stream was deleted in the target)", cur, cur+1, r.first-1))
	}
	if cur >= r.first {
		n := min(cur, last) - r.first + 1
		held, err := im.s.ReadStream(ctx, r.stream, r.first, int(n), cairn.Forward)
		if err != nil {
			return im.requestError(r, err)
		}
		for _, e := range held {
			i := e.Version - r.first
			if i < 0 || i >= int64(len(r.events)) {
				continue
			}
			if want := r.events[i].ID; e.ID != want {
				return im.requestError(r, fmt.Errorf("the target holds another event at version %d: id %s, the export's is %s", e.Version, e.ID, want))
			}
		}
	}
	if cur >= last {
		return nil
	}
	rest := r.events[cur-r.first+1:]
	if err := im.append(ctx, r.stream, expectedFor(cur+1), rest); err != nil {
		return im.requestError(request{stream: r.stream, first: cur + 1, events: rest}, err)
	}
	return nil
}

// append appends events to one stream.
func (im *importer) append(ctx context.Context, stream string, exp cairn.ExpectedVersion, events []cairn.EventData) error {
	_, err := im.s.Append(ctx, stream, exp, events...)
	return err
}

// end appends the last batch, checks the export's counts, and applies the
// stream states.
func (im *importer) end(ctx context.Context, e End) error {
	if e.Events != im.st.Events || e.Streams != im.st.Streams {
		return im.errorf("the end record counts %d events of %d streams, the export holds %d of %d", e.Events, e.Streams, im.st.Events, im.st.Streams)
	}
	if err := im.flush(ctx); err != nil {
		return err
	}
	for _, st := range im.finals {
		if err := im.apply(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// apply truncates, deletes or tombstones a stream as its state says. Each
// is idempotent, so that an import run again ends in the same state.
func (im *importer) apply(ctx context.Context, st StreamState) error {
	switch st.State {
	case StateLive:
		if err := im.s.TruncateStream(ctx, st.Stream, st.FirstVersion); err != nil {
			return fmt.Errorf("import: stream %q was truncated before version %d: %w", st.Stream, st.FirstVersion, err)
		}
	case StateDeleted:
		if err := im.s.DeleteStream(ctx, st.Stream, cairn.Any); err != nil && !errors.Is(err, cairn.ErrStreamNotFound) {
			return fmt.Errorf("import: stream %q was deleted: %w", st.Stream, err)
		}
	case StateTombstoned:
		if err := im.s.TombstoneStream(ctx, st.Stream, cairn.Any); err != nil && !errors.Is(err, cairn.ErrStreamDeleted) {
			return fmt.Errorf("import: stream %q was tombstoned: %w", st.Stream, err)
		}
	}
	return nil
}
