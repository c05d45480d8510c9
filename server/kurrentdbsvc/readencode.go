package kurrentdbsvc

import (
	"encoding/binary"
	"strconv"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/protobuf/encoding/protowire"
)

// Reads and subscriptions send a message per event. Built as messages,
// an event took a dozen allocations, and its metadata map was sized and
// encoded through reflection: most of the server's CPU per event read.
// readEvent encodes the message's bytes directly instead, into a buffer
// the reader reuses, and hands them to gRPC as the unknown fields of an
// empty ReadResp, which the protobuf codec sends as they are: the client
// decodes a ReadResp with its event. TestReadEventEncoding checks the
// bytes against the messages they stand for.

// The field numbers of the messages readEvent encodes (streams.proto and
// shared.proto of the KurrentDB protocol).
const (
	fieldReadRespEvent = 1 // ReadResp.event

	fieldReadEventEvent    = 1 // ReadResp.ReadEvent.event
	fieldReadEventLink     = 2 // ReadResp.ReadEvent.link
	fieldReadEventPosition = 3 // ReadResp.ReadEvent.commit_position

	fieldRecordedID         = 1 // RecordedEvent.id
	fieldRecordedStream     = 2 // RecordedEvent.stream_identifier
	fieldRecordedRevision   = 3 // RecordedEvent.stream_revision
	fieldRecordedPrepare    = 4 // RecordedEvent.prepare_position
	fieldRecordedCommit     = 5 // RecordedEvent.commit_position
	fieldRecordedMetadata   = 6 // RecordedEvent.metadata
	fieldRecordedCustomMeta = 7 // RecordedEvent.custom_metadata
	fieldRecordedData       = 8 // RecordedEvent.data

	fieldStreamName     = 3 // StreamIdentifier.stream_name
	fieldUUIDStructured = 1 // UUID.structured
	fieldUUIDString     = 2 // UUID.string
	fieldUUIDMost       = 1 // UUID.Structured.most_significant_bits
	fieldUUIDLeast      = 2 // UUID.Structured.least_significant_bits
	fieldMapKey         = 1
	fieldMapValue       = 2
)

// readEvent returns the Read response that carries r, in the form of
// KurrentDB's ResolvedEvent (see [links.Resolved.Parts]), encoded into
// *buf, which it grows and which must not change until the response is
// sent. The position is the original event's: the link's, for a link.
func readEvent(r *links.Resolved, uuidString bool, buf *[]byte) *api.ReadResp {
	event, link := r.Parts()
	var ev, ln recorded
	inner := protowire.SizeTag(fieldReadEventPosition) + protowire.SizeVarint(r.Event.Position)
	if event != nil {
		ev = newRecorded(event, uuidString)
		inner += protowire.SizeTag(fieldReadEventEvent) + protowire.SizeBytes(ev.size)
	}
	if link != nil {
		ln = newRecorded(link, uuidString)
		inner += protowire.SizeTag(fieldReadEventLink) + protowire.SizeBytes(ln.size)
	}
	b := (*buf)[:0]
	if need := protowire.SizeTag(fieldReadRespEvent) + protowire.SizeBytes(inner); cap(b) < need {
		b = make([]byte, 0, need)
	}
	b = protowire.AppendTag(b, fieldReadRespEvent, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	if event != nil {
		b = ev.append(b, fieldReadEventEvent)
	}
	if link != nil {
		b = ln.append(b, fieldReadEventLink)
	}
	b = protowire.AppendTag(b, fieldReadEventPosition, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Event.Position)
	*buf = b
	resp := new(api.ReadResp)
	resp.ProtoReflect().SetUnknown(b)
	return resp
}

// recorded is an event on its way to a RecordedEvent message, with the
// sizes of its parts.
type recorded struct {
	e           *cairn.Event
	uuidString  bool
	most, least uint64   // the id, structured
	created     [20]byte // the "created" metadata: ticks, in decimal
	createdLen  int
	idSize      int // the UUID message
	streamSize  int // the StreamIdentifier message
	size        int // the RecordedEvent message
}

func newRecorded(e *cairn.Event, uuidString bool) recorded {
	r := recorded{e: e, uuidString: uuidString}
	if uuidString {
		r.idSize = protowire.SizeTag(fieldUUIDString) + protowire.SizeBytes(36)
	} else {
		r.most, r.least = binary.BigEndian.Uint64(e.ID[:8]), binary.BigEndian.Uint64(e.ID[8:])
		structured := sizeUint(fieldUUIDMost, r.most) + sizeUint(fieldUUIDLeast, r.least)
		r.idSize = protowire.SizeTag(fieldUUIDStructured) + protowire.SizeBytes(structured)
	}
	if e.StreamID != "" {
		r.streamSize = protowire.SizeTag(fieldStreamName) + protowire.SizeBytes(len(e.StreamID))
	}
	r.createdLen = len(strconv.AppendInt(r.created[:0], e.Created.UnixNano()/100, 10))
	r.size = protowire.SizeTag(fieldRecordedID) + protowire.SizeBytes(r.idSize) +
		protowire.SizeTag(fieldRecordedStream) + protowire.SizeBytes(r.streamSize) +
		sizeUint(fieldRecordedRevision, uint64(e.Version)) +
		sizeUint(fieldRecordedPrepare, e.Position) + sizeUint(fieldRecordedCommit, e.Position) +
		sizeEntry(len(metaType), len(e.Type)) +
		sizeEntry(len(metaContentType), len(e.ContentType.String())) +
		sizeEntry(len(metaCreated), r.createdLen) +
		sizeBytes(fieldRecordedCustomMeta, len(e.Metadata)) + sizeBytes(fieldRecordedData, len(e.Data))
	return r
}

// append appends the event as the RecordedEvent field num.
func (r *recorded) append(b []byte, num protowire.Number) []byte {
	e := r.e
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(r.size))

	b = protowire.AppendTag(b, fieldRecordedID, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(r.idSize))
	if r.uuidString {
		var text [36]byte
		copy(text[:], e.ID.String())
		b = protowire.AppendTag(b, fieldUUIDString, protowire.BytesType)
		b = protowire.AppendBytes(b, text[:])
	} else {
		b = protowire.AppendTag(b, fieldUUIDStructured, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeUint(fieldUUIDMost, r.most)+sizeUint(fieldUUIDLeast, r.least)))
		b = appendUint(b, fieldUUIDMost, r.most)
		b = appendUint(b, fieldUUIDLeast, r.least)
	}

	b = protowire.AppendTag(b, fieldRecordedStream, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(r.streamSize))
	if e.StreamID != "" {
		b = protowire.AppendTag(b, fieldStreamName, protowire.BytesType)
		b = protowire.AppendString(b, e.StreamID)
	}
	b = appendUint(b, fieldRecordedRevision, uint64(e.Version))
	b = appendUint(b, fieldRecordedPrepare, e.Position)
	b = appendUint(b, fieldRecordedCommit, e.Position)

	b = appendEntry(b, metaType, e.Type)
	b = appendEntry(b, metaContentType, e.ContentType.String())
	b = appendEntry(b, metaCreated, string(r.created[:r.createdLen]))

	if len(e.Metadata) > 0 {
		b = protowire.AppendTag(b, fieldRecordedCustomMeta, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Metadata)
	}
	if len(e.Data) > 0 {
		b = protowire.AppendTag(b, fieldRecordedData, protowire.BytesType)
		b = protowire.AppendBytes(b, e.Data)
	}
	return b
}

// sizeUint is the size of a proto3 scalar field, left out when zero.
func sizeUint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

// sizeBytes is the size of a proto3 bytes field, left out when empty.
func sizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// sizeEntry is the size of an entry of the metadata map, whose key and
// value are always written.
func sizeEntry(key, value int) int {
	entry := protowire.SizeTag(fieldMapKey) + protowire.SizeBytes(key) + protowire.SizeTag(fieldMapValue) + protowire.SizeBytes(value)
	return protowire.SizeTag(fieldRecordedMetadata) + protowire.SizeBytes(entry)
}

// appendUint appends a proto3 scalar field, left out when zero.
func appendUint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendEntry appends an entry of the metadata map.
func appendEntry(b []byte, key, value string) []byte {
	b = protowire.AppendTag(b, fieldRecordedMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(protowire.SizeTag(fieldMapKey)+protowire.SizeBytes(len(key))+protowire.SizeTag(fieldMapValue)+protowire.SizeBytes(len(value))))
	b = protowire.AppendTag(b, fieldMapKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fieldMapValue, protowire.BytesType)
	return protowire.AppendString(b, value)
}
