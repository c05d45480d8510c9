package kurrentdbsvc

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
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

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
