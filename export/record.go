package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// Format is the version of the format [Write] produces. [Import] refuses a
// newer one.
const Format = 1

// Header is the first line of an export.
type Header struct {
	// Format is the format's version, [Format].
	Format int `json:"format"`
	// Created is when the export began.
	Created time.Time `json:"created"`
	// Source describes the store exported (a redacted URL), if given.
	Source string `json:"source,omitempty"`
	// Head is the position of the last event of the log when the export
	// began (-1 for an empty log); later events are not exported.
	Head int64 `json:"head"`
	// Streams and Prefixes are the limits of the export, if any.
	Streams  []string `json:"streams,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
}

// The states of a stream.
const (
	StateLive       = "live"
	StateDeleted    = "deleted"
	StateTombstoned = "tombstoned"
)

// StreamState is the state of a stream, written before its first event.
type StreamState struct {
	Stream string `json:"stream"`
	// State is StateLive, StateDeleted or StateTombstoned.
	State string `json:"state"`
	// FirstVersion is, for a live stream, the first version its reads
	// return: above 0 when the stream was truncated.
	FirstVersion int64 `json:"first_version"`
}

// End is the last line of an export: what it holds, so that an import can
// tell a complete export from a cut one.
type End struct {
	Events  int64 `json:"events"`
	Streams int64 `json:"streams"`
}

// Event is an event line: every field of a recorded event.
type Event struct {
	Stream         string          `json:"stream"`
	Version        int64           `json:"version"`
	Position       uint64          `json:"position"`
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	ContentType    string          `json:"content_type"`
	Data           json.RawMessage `json:"data,omitempty"`
	DataBase64     []byte          `json:"data_base64,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	MetadataBase64 []byte          `json:"metadata_base64,omitempty"`
	Tags           []string        `json:"tags,omitempty"`
	Created        time.Time       `json:"created"`
}

// line is any line of an export. Exactly one of the pointers is set for a
// header, a stream state or an end; otherwise the line is an event.
type line struct {
	Header *Header      `json:"cairn_export,omitempty"`
	State  *StreamState `json:"stream_state,omitempty"`
	End    *End         `json:"end,omitempty"`
	Event
}

// FromEvent returns the line of a recorded event.
func FromEvent(e cairn.Event) Event {
	out := Event{
		Stream: e.StreamID, Version: e.Version, Position: e.Position,
		ID: e.ID.String(), Type: e.Type, ContentType: e.ContentType.String(),
		Tags: e.Tags, Created: e.Created.UTC(),
	}
	if e.ContentType == cairn.ContentJSON && embeddable(e.Data) {
		out.Data = e.Data
	} else if len(e.Data) > 0 {
		out.DataBase64 = e.Data
	}
	if embeddable(e.Metadata) {
		out.Metadata = e.Metadata
	} else if len(e.Metadata) > 0 {
		out.MetadataBase64 = e.Metadata
	}
	return out
}

// embeddable reports whether b can be embedded in a line as JSON and come
// back byte for byte: valid JSON, valid UTF-8, and compact (the encoder
// removes insignificant spaces from embedded JSON).
func embeddable(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) || !json.Valid(b) {
		return false
	}
	var c bytes.Buffer
	c.Grow(len(b))
	return json.Compact(&c, b) == nil && bytes.Equal(c.Bytes(), b)
}

// EventData returns the event as written, and the stream and version it
// had.
func (e Event) EventData() (cairn.EventData, error) {
	var d cairn.EventData
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return d, fmt.Errorf("id %q: %w", e.ID, err)
	}
	if id == uuid.Nil {
		return d, fmt.Errorf("id is the nil UUID")
	}
	d.ID, d.Type, d.Tags = id, e.Type, e.Tags
	switch e.ContentType {
	case cairn.ContentJSON.String():
		d.ContentType = cairn.ContentJSON
	case cairn.ContentBinary.String():
		d.ContentType = cairn.ContentBinary
	default:
		return d, fmt.Errorf("content_type %q: want %q or %q", e.ContentType, cairn.ContentJSON, cairn.ContentBinary)
	}
	if e.Data != nil && e.DataBase64 != nil {
		return d, fmt.Errorf("both data and data_base64")
	}
	if e.Metadata != nil && e.MetadataBase64 != nil {
		return d, fmt.Errorf("both metadata and metadata_base64")
	}
	d.Data, d.Metadata = e.DataBase64, e.MetadataBase64
	if e.Data != nil {
		d.Data = []byte(e.Data)
	}
	if e.Metadata != nil {
		d.Metadata = []byte(e.Metadata)
	}
	return d, nil
}
