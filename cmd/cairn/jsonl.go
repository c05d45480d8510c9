package main

import (
	"encoding/json"
	"io"
	"time"

	"github.com/cairndb/cairn"
)

// jsonEvent is how commands print a recorded event: one JSON object per line.
// JSON data and metadata are embedded as JSON; anything else as base64
// (data_base64, metadata_base64).
type jsonEvent struct {
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

func toJSONEvent(e cairn.Event) jsonEvent {
	j := jsonEvent{
		Stream: e.StreamID, Version: e.Version, Position: e.Position,
		ID: e.ID.String(), Type: e.Type, ContentType: e.ContentType.String(),
		Tags: e.Tags, Created: e.Created,
	}
	if e.ContentType == cairn.ContentJSON && json.Valid(e.Data) {
		j.Data = e.Data
	} else if len(e.Data) > 0 {
		j.DataBase64 = e.Data
	}
	if len(e.Metadata) > 0 {
		if json.Valid(e.Metadata) {
			j.Metadata = e.Metadata
		} else {
			j.MetadataBase64 = e.Metadata
		}
	}
	return j
}

// eventWriter writes events as JSON lines.
type eventWriter struct{ enc *json.Encoder }

func newEventWriter(w io.Writer) eventWriter { return eventWriter{json.NewEncoder(w)} }

func (w eventWriter) write(e cairn.Event) error { return w.enc.Encode(toJSONEvent(e)) }
