package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cairndb/cairn"
)

// metaPrefix starts the name of a stream's metadata stream, as the server
// writes it: "$$order-1" holds the metadata of "order-1".
const metaPrefix = "$$"

// Options limit and observe an export. The zero value exports the whole log.
type Options struct {
	// Streams limits the export to these streams (and their metadata
	// streams).
	Streams []string
	// Prefixes limits the export to the streams whose ids start with one of
	// these (a category: "order-"), and their metadata streams.
	Prefixes []string
	// Source describes the store in the header, such as its redacted URL.
	Source string
	// Progress, when set, is called after each event written with 1 and
	// the size of its line.
	Progress func(events, bytes int64)
	// PageSize is the number of events read from the log at a time
	// (default 1024).
	PageSize int
}

// pageBytes ends a page of the log early, after the event that brings its
// data and metadata to this many bytes, so that an export of large events
// holds few of them at once.
const pageBytes = 8 << 20

// Stats say what an export or an import held.
type Stats struct {
	// Events is the number of event lines.
	Events int64
	// Streams is the number of streams.
	Streams int64
	// Bytes is the size of the export.
	Bytes int64
	// Placeholders is, for an import, the number of placeholder events it
	// wrote below truncated streams (see [PlaceholderType]).
	Placeholders int64
}

// Write exports the log of s to w, from its first event to the last one
// committed when Write begins, limited as opts says. It reads the log in
// position order and, the first time it meets a stream, the stream's state.
func Write(ctx context.Context, s *cairn.Store, w io.Writer, opts Options) (Stats, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = 1024
	}
	for _, id := range opts.Streams {
		if err := cairn.ValidateStreamID(id); err != nil {
			return Stats{}, fmt.Errorf("export: stream: %w", err)
		}
	}
	for _, p := range opts.Prefixes {
		if p == "" {
			return Stats{}, errors.New("export: a prefix must not be empty")
		}
	}
	ew := &writer{s: s, opts: opts, seen: map[string]bool{}}
	ew.bw = bufio.NewWriterSize(w, 256<<10)
	ew.enc = json.NewEncoder(&ew.line)
	ew.enc.SetEscapeHTML(false)
	head := int64(-1)
	last, err := s.ReadAll(ctx, cairn.LogEnd, 1, cairn.Backward)
	if err != nil {
		return Stats{}, fmt.Errorf("export: read the head of the log: %w", err)
	}
	if len(last) == 1 {
		head = int64(last[0].Position)
	}
	h := Header{Format: Format, Created: cairn.Now(), Source: opts.Source, Head: head, Streams: opts.Streams, Prefixes: opts.Prefixes}
	if err := ew.write(struct {
		H *Header `json:"cairn_export"`
	}{&h}); err != nil {
		return ew.st, err
	}
	if head >= 0 {
		if err := ew.events(ctx, uint64(head)); err != nil {
			return ew.st, err
		}
	}
	if err := ew.write(struct {
		E End `json:"end"`
	}{End{Events: ew.st.Events, Streams: ew.st.Streams}}); err != nil {
		return ew.st, err
	}
	if err := ew.bw.Flush(); err != nil {
		return ew.st, fmt.Errorf("export: write: %w", err)
	}
	return ew.st, nil
}

type writer struct {
	s    *cairn.Store
	opts Options
	bw   *bufio.Writer
	line bytes.Buffer
	enc  *json.Encoder
	seen map[string]bool // streams whose state was written
	st   Stats
}

// events writes the events of the log up to head, with each stream's state
// before its first event.
func (w *writer) events(ctx context.Context, head uint64) error {
	next := uint64(0)
	for {
		page, err := w.s.ReadAllSized(ctx, next, w.opts.PageSize, pageBytes, cairn.Forward)
		if err != nil {
			return fmt.Errorf("export: read the log at position %d: %w", next, err)
		}
		for _, e := range page {
			if e.Position > head {
				return nil
			}
			if !w.included(e.StreamID) {
				continue
			}
			if !w.seen[e.StreamID] {
				st, err := streamState(ctx, w.s, e.StreamID)
				if err != nil {
					return err
				}
				if err := w.write(struct {
					S StreamState `json:"stream_state"`
				}{st}); err != nil {
					return err
				}
				w.seen[e.StreamID] = true
				w.st.Streams++
			}
			if err := w.write(FromEvent(e)); err != nil {
				return err
			}
			w.st.Events++
			if w.opts.Progress != nil {
				w.opts.Progress(1, int64(w.line.Len()))
			}
		}
		if !cairn.PageFull(page, w.opts.PageSize, pageBytes) {
			return nil
		}
		next = page[len(page)-1].Position + 1
	}
}

// included reports whether the export covers stream. The engine's records
// of deletions are never exported: the import's deletes make their own.
func (w *writer) included(stream string) bool {
	if stream == cairn.DeletionsStream {
		return false
	}
	if len(w.opts.Streams) == 0 && len(w.opts.Prefixes) == 0 {
		return true
	}
	target := strings.TrimPrefix(stream, metaPrefix)
	for _, id := range w.opts.Streams {
		if target == id {
			return true
		}
	}
	for _, p := range w.opts.Prefixes {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}

// write encodes one line and writes it.
func (w *writer) write(l any) error {
	w.line.Reset()
	if err := w.enc.Encode(l); err != nil {
		return fmt.Errorf("export: encode: %w", err)
	}
	n, err := w.bw.Write(w.line.Bytes())
	w.st.Bytes += int64(n)
	if err != nil {
		return fmt.Errorf("export: write: %w", err)
	}
	return nil
}

// streamState reads the state of stream: live (with the first version its
// reads return), soft-deleted or tombstoned.
func streamState(ctx context.Context, s *cairn.Store, stream string) (StreamState, error) {
	st := StreamState{Stream: stream, State: StateLive}
	v, err := s.StreamVersion(ctx, stream)
	switch {
	case errors.Is(err, cairn.ErrStreamNotFound):
		st.State = StateDeleted
		return st, nil
	case errors.Is(err, cairn.ErrStreamDeleted):
		st.State = StateTombstoned
		return st, nil
	case err != nil:
		return st, fmt.Errorf("export: state of stream %q: %w", stream, err)
	}
	first, err := s.ReadStream(ctx, stream, 0, 1, cairn.Forward)
	if err != nil {
		return st, fmt.Errorf("export: state of stream %q: %w", stream, err)
	}
	st.FirstVersion = v + 1 // truncated past its end: no read returns an event
	if len(first) == 1 {
		st.FirstVersion = first[0].Version
	}
	return st, nil
}
