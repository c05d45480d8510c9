package cairn

import (
	"time"

	"github.com/google/uuid"
)

// ContentType says how an event's data is encoded.
type ContentType uint8

const (
	// ContentJSON marks data that is a JSON document. It is the zero value.
	ContentJSON ContentType = iota
	// ContentBinary marks opaque bytes.
	ContentBinary
)

// String returns the MIME type of c.
func (c ContentType) String() string {
	switch c {
	case ContentJSON:
		return "application/json"
	case ContentBinary:
		return "application/octet-stream"
	}
	return "unknown"
}

// EventData is an event as written: what a caller hands to [Store.Append].
type EventData struct {
	// ID identifies the event. When it is the zero UUID the Store assigns a
	// time-ordered (version 7) UUID.
	ID uuid.UUID
	// Type names the kind of event; it is required, 1 to 256 bytes.
	Type string
	// ContentType says whether Data is JSON or binary.
	ContentType ContentType
	// Data is the event's payload.
	Data []byte
	// Metadata is stored as given; by convention it is a JSON object.
	Metadata []byte
	// Tags are zero or more non-empty labels, used by filters and reads by tag.
	Tags []string
}

// Event is an event as recorded: the data as written plus where and when it
// was committed.
type Event struct {
	EventData
	// StreamID is the stream the event belongs to.
	StreamID string
	// Version is the event's 0-based number within its stream.
	Version int64
	// Position is the event's 0-based offset in the global log.
	Position uint64
	// Created is the UTC time of the commit. Engines keep at least
	// microsecond precision.
	Created time.Time
}

// Sequence returns the event's Maestro sequence number (Version + 1).
func (e Event) Sequence() int64 { return e.Version + 1 }

// AppendResult is the outcome of a successful append.
type AppendResult struct {
	// Version is the stream version of the last event appended.
	Version int64
	// Position is the global position of the last event appended. The
	// events of one append occupy the positions Position-n+1 … Position.
	Position uint64
}

// AppendRequest is one stream's part of a multi-stream append.
type AppendRequest struct {
	Stream   string
	Expected ExpectedVersion
	// Events are the events to append. In [Store.AppendBatch] a request
	// may have none: a check-only request, which writes nothing and makes
	// the batch fail unless its stream satisfies Expected, checked
	// atomically with the rest of the batch. Its result holds the
	// stream's current version (-1 when the stream does not exist) and
	// position 0.
	Events []EventData
	// Condition, when set, makes the request conditional (dynamic
	// consistency boundaries): it is written only if the condition holds.
	// Only engines that implement [Querier] check conditions; the Store
	// refuses a condition with ErrNotSupported on any other.
	Condition *AppendCondition
}

// Direction is the order of a read.
type Direction int8

const (
	// Forward reads in ascending version or position order.
	Forward Direction = iota
	// Backward reads in descending order.
	Backward
)

// String returns "forward" or "backward".
func (d Direction) String() string {
	switch d {
	case Forward:
		return "forward"
	case Backward:
		return "backward"
	}
	return "unknown"
}

// StreamEnd, passed as the start of a backward stream read, starts at the
// stream's last event.
const StreamEnd int64 = -1

// LogEnd, passed as the start of a backward read of the global log, starts at
// the last event committed.
const LogEnd uint64 = 1<<64 - 1

// Snapshot is a saved aggregate state as of a stream version.
type Snapshot struct {
	// StreamID is the stream (aggregate) the snapshot belongs to.
	StreamID string
	// Version is the version of the last event folded into the state.
	Version int64
	// Data is the encoded state.
	Data []byte
	// Metadata is stored as given (for example a schema version).
	Metadata []byte
	// Created is set by the engine when the snapshot is stored.
	Created time.Time
}

// Entry is a key and value of a read model table.
type Entry struct {
	Key   string
	Value []byte
}
