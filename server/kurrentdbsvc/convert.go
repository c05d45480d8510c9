package kurrentdbsvc

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
)

// The keys of a recorded event's system metadata in the KurrentDB protocol.
const (
	metaType        = "type"
	metaContentType = "content-type"
	metaCreated     = "created"
)

// The MIME types of the protocol's content-type metadata.
const (
	mimeJSON   = "application/json"
	mimeBinary = "application/octet-stream"
)

// uuidFromProto decodes the protocol's UUID, structured (two big-endian
// halves) or as a string. A missing UUID is the zero UUID, for which the
// Store assigns one.
func uuidFromProto(id *shared.UUID) (uuid.UUID, error) {
	if id == nil {
		return uuid.Nil, nil
	}
	switch v := id.Value.(type) {
	case *shared.UUID_Structured_:
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], uint64(v.Structured.GetMostSignificantBits()))
		binary.BigEndian.PutUint64(u[8:], uint64(v.Structured.GetLeastSignificantBits()))
		return u, nil
	case *shared.UUID_String_:
		u, err := uuid.Parse(v.String_)
		if err != nil {
			return uuid.Nil, fmt.Errorf("event id %q is not a UUID: %w", v.String_, err)
		}
		return u, nil
	}
	return uuid.Nil, nil
}

// uuidToProto encodes u structured, or as a string when asString is set (the
// read option uuid_option.string).
func uuidToProto(u uuid.UUID, asString bool) *shared.UUID {
	if asString {
		return &shared.UUID{Value: &shared.UUID_String_{String_: u.String()}}
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{
		MostSignificantBits:  int64(binary.BigEndian.Uint64(u[:8])),
		LeastSignificantBits: int64(binary.BigEndian.Uint64(u[8:])),
	}}}
}

// eventFromProposed converts a proposed message. The event type comes from
// the "type" metadata and the content type from "content-type": JSON for
// application/json, binary for anything else.
func eventFromProposed(i int, id *shared.UUID, meta map[string]string, custom, data []byte) (cairn.EventData, error) {
	u, err := uuidFromProto(id)
	if err != nil {
		return cairn.EventData{}, fmt.Errorf("events[%d]: %w", i, err)
	}
	t := meta[metaType]
	if t == "" {
		return cairn.EventData{}, fmt.Errorf("events[%d]: the %q metadata (the event type) is missing", i, metaType)
	}
	ct := cairn.ContentBinary
	if meta[metaContentType] == mimeJSON {
		ct = cairn.ContentJSON
	}
	return cairn.EventData{ID: u, Type: t, ContentType: ct, Data: data, Metadata: custom}, nil
}

// ticks converts a time to the protocol's "created" value: .NET ticks (100
// ns) since the Unix epoch.
func ticks(e cairn.Event) string {
	return strconv.FormatInt(e.Created.UnixNano()/100, 10)
}

// recordedEvent renders e in the protocol's form. cairn has one global
// position per event; it is both the commit and the prepare position.
func recordedEvent(e cairn.Event, stream string, uuidString bool) *api.ReadResp_ReadEvent_RecordedEvent {
	return &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               uuidToProto(e.ID, uuidString),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(stream)},
		StreamRevision:   uint64(e.Version),
		PreparePosition:  e.Position,
		CommitPosition:   e.Position,
		Metadata: map[string]string{
			metaType:        e.Type,
			metaContentType: e.ContentType.String(),
			metaCreated:     ticks(e),
		},
		CustomMetadata: nonNil(e.Metadata),
		Data:           nonNil(e.Data),
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// readEvent wraps an event as read in a Read response, in the form of
// KurrentDB's ResolvedEvent: an event alone, or a resolved link (event and
// link), or a link whose target is gone (link alone). The position is the
// original event's: the link's, for a link, which for the standard
// projections' links is the position of the event they name.
func readEvent(r *links.Resolved, uuidString bool) *api.ReadResp {
	event, link := r.Parts()
	re := &api.ReadResp_ReadEvent{
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Event.Position},
	}
	if event != nil {
		re.Event = recordedEvent(*event, event.StreamID, uuidString)
	}
	if link != nil {
		re.Link = recordedEvent(*link, link.StreamID, uuidString)
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: re}}
}
