package main

import (
	"encoding/json"
	"io"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/export"
)

// jsonEvent is how commands print a recorded event: one JSON object per
// line, the event line of an export. Unlike an export, which embeds only
// JSON it can give back byte for byte, commands embed any valid JSON data
// and metadata, for people to read; anything else goes as base64
// (data_base64, metadata_base64).
type jsonEvent = export.Event

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
