package cairn

import (
	"context"
)

// ReadStream returns at most count events of stream from version from, in
// direction dir. A backward read from StreamEnd starts at the last event.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, count int, dir Direction) ([]Event, error) {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	ctx, end := s.begin(ctx, Operation{Name: OpReadStream, Stream: stream})
	events, err := s.b.ReadStream(ctx, stream, from, count, dir)
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
}

func checkStreamRead(stream string, from int64, dir Direction) error {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return err
	}
	if err := validateDirection(dir); err != nil {
		return err
	}
	if from < 0 && !(dir == Backward && from == StreamEnd) {
		return invalidf("from", "version %d is negative; only a backward read may start at StreamEnd (-1)", from)
	}
	return nil
}

// ReadAll returns at most count events of the global log from position from,
// in direction dir. A backward read from LogEnd starts at the last event.
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir Direction) ([]Event, error) {
	if err := validateDirection(dir); err != nil {
		return nil, err
	}
	if err := validateCount(count); err != nil {
		return nil, err
	}
	ctx, end := s.begin(ctx, Operation{Name: OpReadAll})
	events, err := s.b.ReadAll(ctx, from, count, dir)
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
}

// EventBytes is an event's size as [Options.MaxEventBytes] limits it and
// sized reads count it: its data plus its metadata.
func EventBytes(e Event) int { return len(e.Data) + len(e.Metadata) }

// PageFull reports whether a sized read of at most count events and
// maxBytes (see [SizedReader]) that returned events may have stopped before
// the end: it returned count events, or events that hold maxBytes or more.
func PageFull(events []Event, count, maxBytes int) bool {
	if len(events) >= count {
		return true
	}
	n := 0
	for _, e := range events {
		n += EventBytes(e)
	}
	return len(events) > 0 && n >= maxBytes
}

// ReadStreamSized is [Store.ReadStream] that also stops after the event that
// brings the data and metadata read to maxBytes or more (see
// [SizedReader]): it returns at least one event when there is one, and
// [PageFull] tells whether more may follow. With an engine that does not
// implement SizedReader the result is the same, but the engine reads count
// events whatever their size.
func (s *Store) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir Direction) ([]Event, error) {
	if err := checkStreamRead(stream, from, dir); err != nil {
		return nil, err
	}
	if err := validateSized(count, maxBytes); err != nil {
		return nil, err
	}
	ctx, end := s.begin(ctx, Operation{Name: OpReadStream, Stream: stream})
	events, err := s.readStreamSized(ctx, stream, from, count, maxBytes, dir)
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
}

func (s *Store) readStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir Direction) ([]Event, error) {
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadStreamSized(ctx, stream, from, count, maxBytes, dir)
	}
	events, err := s.b.ReadStream(ctx, stream, from, count, dir)
	return cutSized(events, maxBytes), err
}

// ReadAllSized is [Store.ReadAll] that also stops after the event that
// brings the data and metadata read to maxBytes or more, as
// [Store.ReadStreamSized] does.
func (s *Store) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir Direction) ([]Event, error) {
	if err := validateDirection(dir); err != nil {
		return nil, err
	}
	if err := validateSized(count, maxBytes); err != nil {
		return nil, err
	}
	ctx, end := s.begin(ctx, Operation{Name: OpReadAll})
	events, err := s.readAllSized(ctx, from, count, maxBytes, dir)
	if end != nil {
		end(readOutcome(events, err))
	}
	return events, err
}

func (s *Store) readAllSized(ctx context.Context, from uint64, count, maxBytes int, dir Direction) ([]Event, error) {
	if sr, ok := s.b.(SizedReader); ok {
		return sr.ReadAllSized(ctx, from, count, maxBytes, dir)
	}
	events, err := s.b.ReadAll(ctx, from, count, dir)
	return cutSized(events, maxBytes), err
}

func validateSized(count, maxBytes int) error {
	if err := validateCount(count); err != nil {
		return err
	}
	if maxBytes <= 0 {
		return invalidf("max bytes", "must be positive, got %d", maxBytes)
	}
	return nil
}

// cutSized drops the events after the one that brings the data and
// metadata of events to maxBytes.
func cutSized(events []Event, maxBytes int) []Event {
	n := 0
	for i, e := range events {
		if n += EventBytes(e); n >= maxBytes {
			return events[:i+1]
		}
	}
	return events
}

// StreamVersion returns the version of the stream's last event, or an error
// matching ErrStreamNotFound.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return 0, err
	}
	return s.b.StreamVersion(ctx, stream)
}

// StreamExists reports whether the stream exists and is not deleted.
func (s *Store) StreamExists(ctx context.Context, stream string) (bool, error) {
	if err := validateName("stream", stream, MaxStreamIDBytes); err != nil {
		return false, err
	}
	return s.b.StreamExists(ctx, stream)
}

// HasEvents reports whether the store holds any event.
func (s *Store) HasEvents(ctx context.Context) (bool, error) { return s.b.HasEvents(ctx) }
