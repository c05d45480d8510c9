package kurrentdbsvc

import (
	"unicode/utf8"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Codec returns the gRPC codec for a server that serves these services
// (grpc.ForceServerCodecV2): gRPC's protobuf codec, but a v1 Append's
// messages, which every append of the official clients sends, are decoded
// by hand, without the reflection that protobuf spends on their metadata
// map. The result is the message protobuf would decode; anything this
// decoder does not expect (an unknown or repeated field, a wrong wire
// type, invalid UTF-8, a message in several buffers) goes to protobuf, so
// that every input is decoded, or refused, as protobuf does.
func Codec() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2(proto.Name)}
}

type codec struct{ proto encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*api.AppendReq); ok && len(data) == 1 && decodeAppendReq(data[0].ReadOnlyData(), m) {
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (codec) Name() string { return proto.Name }

// decodeAppendReq decodes b into m, as proto.Unmarshal does, and reports
// whether it did; when it did not, m is untouched and b is for protobuf to
// decode.
// Byte fields are copied: b is gRPC's buffer, reused after the call.
func decodeAppendReq(b []byte, m *api.AppendReq) bool {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return false
	}
	body, k := protowire.ConsumeBytes(b[n:])
	if k < 0 || n+k != len(b) {
		return false // not exactly one field
	}
	switch num {
	case 1:
		o := new(optionsBox)
		if !decodeOptions(body, o) {
			return false
		}
		o.content.Options = &o.opts
		m.Reset()
		m.Content = &o.content
		return true
	case 2:
		p := new(proposedBox)
		if !decodeProposed(body, p) {
			return false
		}
		p.content.ProposedMessage = &p.pm
		m.Reset()
		m.Content = &p.content
		return true
	}
	return false
}

// optionsBox holds the messages of an append's options, so that they take
// one allocation.
type optionsBox struct {
	content api.AppendReq_Options_
	opts    api.AppendReq_Options
	id      shared.StreamIdentifier
	rev     api.AppendReq_Options_Revision
	noneOf  api.AppendReq_Options_NoStream
	anyOf   api.AppendReq_Options_Any
	exists  api.AppendReq_Options_StreamExists
	empty   shared.Empty
}

func decodeOptions(b []byte, o *optionsBox) bool {
	var seenID, seenRev bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType && !seenID:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 || !decodeStreamIdentifier(v, &o.id) {
				return false
			}
			b, seenID = b[k:], true
			o.opts.StreamIdentifier = &o.id
		case num == 2 && typ == protowire.VarintType && !seenRev:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return false
			}
			b, seenRev = b[k:], true
			o.rev.Revision = v
			o.opts.ExpectedStreamRevision = &o.rev
		case num >= 3 && num <= 5 && typ == protowire.BytesType && !seenRev:
			v, k := protowire.ConsumeBytes(b)
			if k < 0 || len(v) != 0 {
				return false // an Empty with fields: protobuf's to keep
			}
			b, seenRev = b[k:], true
			switch num {
			case 3:
				o.noneOf.NoStream = &o.empty
				o.opts.ExpectedStreamRevision = &o.noneOf
			case 4:
				o.anyOf.Any = &o.empty
				o.opts.ExpectedStreamRevision = &o.anyOf
			default:
				o.exists.StreamExists = &o.empty
				o.opts.ExpectedStreamRevision = &o.exists
			}
		default:
			return false
		}
	}
	return true
}

func decodeStreamIdentifier(b []byte, id *shared.StreamIdentifier) bool {
	if len(b) == 0 {
		return true
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 3 || typ != protowire.BytesType {
		return false
	}
	v, k := protowire.ConsumeBytes(b[n:])
	if k < 0 || n+k != len(b) {
		return false
	}
	id.StreamName = clone(v)
	return true
}

// proposedBox holds the messages of a proposed event, so that they take
// one allocation.
type proposedBox struct {
	content    api.AppendReq_ProposedMessage_
	pm         api.AppendReq_ProposedMessage
	id         shared.UUID
	structured shared.UUID_Structured_
	bits       shared.UUID_Structured
	str        shared.UUID_String_
}

func decodeProposed(b []byte, p *proposedBox) bool {
	var seenID, seenCustom, seenData bool
	var custom, data []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return false
		}
		v, k := protowire.ConsumeBytes(b[n:])
		if k < 0 {
			return false
		}
		b = b[n+k:]
		switch {
		case num == 1 && !seenID:
			if !decodeUUID(v, p) {
				return false
			}
			seenID = true
			p.pm.Id = &p.id
		case num == 2:
			key, value, ok := decodeEntry(v)
			if !ok {
				return false
			}
			if p.pm.Metadata == nil {
				p.pm.Metadata = make(map[string]string, 2)
			}
			p.pm.Metadata[key] = value
		case num == 3 && !seenCustom:
			custom, seenCustom = v, true
		case num == 4 && !seenData:
			data, seenData = v, true
		default:
			return false
		}
	}
	// Data and custom metadata in one allocation; empty is nil, as
	// protobuf decodes it.
	if len(data)+len(custom) > 0 {
		buf := make([]byte, len(data)+len(custom))
		copy(buf, data)
		copy(buf[len(data):], custom)
		if len(data) > 0 {
			p.pm.Data = buf[:len(data):len(data)]
		}
		if len(custom) > 0 {
			p.pm.CustomMetadata = buf[len(data):]
		}
	}
	return true
}

func decodeUUID(b []byte, p *proposedBox) bool {
	if len(b) == 0 {
		return true
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.BytesType {
		return false
	}
	v, k := protowire.ConsumeBytes(b[n:])
	if k < 0 || n+k != len(b) {
		return false
	}
	switch num {
	case 1:
		var seenMost, seenLeast bool
		for len(v) > 0 {
			num, typ, n := protowire.ConsumeTag(v)
			if n < 0 || typ != protowire.VarintType {
				return false
			}
			x, k := protowire.ConsumeVarint(v[n:])
			if k < 0 {
				return false
			}
			v = v[n+k:]
			switch {
			case num == 1 && !seenMost:
				p.bits.MostSignificantBits, seenMost = int64(x), true
			case num == 2 && !seenLeast:
				p.bits.LeastSignificantBits, seenLeast = int64(x), true
			default:
				return false
			}
		}
		p.structured.Structured = &p.bits
		p.id.Value = &p.structured
		return true
	case 2:
		if !utf8.Valid(v) {
			return false
		}
		p.str.String_ = string(v)
		p.id.Value = &p.str
		return true
	}
	return false
}

// decodeEntry decodes an entry of a map<string, string>. The names and
// values that every event carries are not allocated.
func decodeEntry(b []byte) (key, value string, ok bool) {
	var seenKey, seenValue bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return "", "", false
		}
		v, k := protowire.ConsumeBytes(b[n:])
		if k < 0 || !utf8.Valid(v) {
			return "", "", false
		}
		b = b[n+k:]
		switch {
		case num == 1 && !seenKey:
			key, seenKey = known(v), true
		case num == 2 && !seenValue:
			value, seenValue = known(v), true
		default:
			return "", "", false
		}
	}
	return key, value, true
}

// known returns b as a string, without allocating the common ones.
func known(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case metaType:
		return metaType
	case metaContentType:
		return metaContentType
	case mimeJSON:
		return mimeJSON
	case mimeBinary:
		return mimeBinary
	}
	return string(b)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
