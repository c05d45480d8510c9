package kurrentdbsvc

import (
	"unicode/utf8"

	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Codec returns the gRPC codec for a server that serves these services
// (grpc.ForceServerCodecV2): gRPC's protobuf codec, but the messages of
// the v1 Append and of BatchAppend, which every append of the official
// clients sends, are decoded by hand, without the reflection that protobuf
// spends on their metadata maps. A message that gRPC hands over in several
// buffers (a large one: each HTTP/2 frame brings at most 16 KiB) is first
// copied into one, as protobuf's codec does. The result is the message
// protobuf would decode; anything this decoder does not expect (an unknown
// or repeated field, a wrong wire type, invalid UTF-8) goes to protobuf, so
// that every input is decoded, or refused, as protobuf does.
func Codec() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2(proto.Name)}
}

type codec struct{ proto encoding.CodecV2 }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *api.AppendResp:
		if b, ok := encodeAppendSuccess(m); ok {
			return mem.BufferSlice{mem.SliceBuffer(b)}, nil
		}
	case *api.BatchAppendResp:
		if b, ok := encodeBatchSuccess(m); ok {
			return mem.BufferSlice{mem.SliceBuffer(b)}, nil
		}
	}
	return c.proto.Marshal(v)
}

// encodeBatchSuccess encodes a BatchAppend's success answer as protobuf
// does, and reports whether m is one it encodes: a success, every message
// in it without unknown fields.
func encodeBatchSuccess(m *api.BatchAppendResp) ([]byte, bool) {
	r, ok := m.Result.(*api.BatchAppendResp_Success_)
	if !ok || r.Success == nil || unknown(m) || unknown(r.Success) || unknown(m.CorrelationId) || unknown(m.StreamIdentifier) {
		return nil, false
	}
	b := make([]byte, 0, 128)
	if id := m.CorrelationId; id != nil {
		var u [64]byte
		e, ok := appendUUID(u[:0], id)
		if !ok {
			return nil, false
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	}
	// Protobuf writes the fields outside oneofs first.
	if id := m.StreamIdentifier; id != nil {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		if len(id.StreamName) == 0 {
			b = protowire.AppendVarint(b, 0)
		} else {
			b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(id.StreamName))))
			b = protowire.AppendTag(b, 3, protowire.BytesType)
			b = protowire.AppendBytes(b, id.StreamName)
		}
	}
	var body [64]byte
	sb := body[:0]
	switch rev := r.Success.CurrentRevisionOption.(type) {
	case nil:
	case *api.BatchAppendResp_Success_CurrentRevision:
		sb = protowire.AppendTag(sb, 1, protowire.VarintType)
		sb = protowire.AppendVarint(sb, rev.CurrentRevision)
	case *api.BatchAppendResp_Success_NoStream:
		if unknown(rev.NoStream) {
			return nil, false
		}
		sb = protowire.AppendTag(sb, 2, protowire.BytesType)
		sb = protowire.AppendVarint(sb, 0)
	default:
		return nil, false
	}
	switch pos := r.Success.PositionOption.(type) {
	case nil:
	case *api.BatchAppendResp_Success_Position:
		p := pos.Position
		if unknown(p) {
			return nil, false
		}
		var at [22]byte // two tags and varints
		a := at[:0]
		if c := p.GetCommitPosition(); c != 0 {
			a = protowire.AppendTag(a, 1, protowire.VarintType)
			a = protowire.AppendVarint(a, c)
		}
		if pp := p.GetPreparePosition(); pp != 0 {
			a = protowire.AppendTag(a, 2, protowire.VarintType)
			a = protowire.AppendVarint(a, pp)
		}
		sb = protowire.AppendTag(sb, 3, protowire.BytesType)
		sb = protowire.AppendBytes(sb, a)
	case *api.BatchAppendResp_Success_NoPosition:
		if unknown(pos.NoPosition) {
			return nil, false
		}
		sb = protowire.AppendTag(sb, 4, protowire.BytesType)
		sb = protowire.AppendVarint(sb, 0)
	default:
		return nil, false
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, sb)
	switch exp := m.ExpectedStreamPosition.(type) {
	case nil:
	case *api.BatchAppendResp_StreamPosition:
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, exp.StreamPosition)
	case *api.BatchAppendResp_NoStream:
		if unknown(exp.NoStream) {
			return nil, false
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	case *api.BatchAppendResp_Any:
		if unknown(exp.Any) {
			return nil, false
		}
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	case *api.BatchAppendResp_StreamExists:
		if unknown(exp.StreamExists) {
			return nil, false
		}
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	default:
		return nil, false
	}
	return b, true
}

// appendUUID appends the encoding of id's fields to b.
func appendUUID(b []byte, id *shared.UUID) ([]byte, bool) {
	switch v := id.Value.(type) {
	case nil:
	case *shared.UUID_String_:
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, v.String_)
	case *shared.UUID_Structured_:
		s := v.Structured
		if unknown(s) {
			return nil, false
		}
		var f [22]byte
		e := f[:0]
		if x := s.GetMostSignificantBits(); x != 0 {
			e = protowire.AppendTag(e, 1, protowire.VarintType)
			e = protowire.AppendVarint(e, uint64(x))
		}
		if x := s.GetLeastSignificantBits(); x != 0 {
			e = protowire.AppendTag(e, 2, protowire.VarintType)
			e = protowire.AppendVarint(e, uint64(x))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, e)
	default:
		return nil, false
	}
	return b, true
}

// unknown reports whether m, a message or nil, has unknown fields, which
// are protobuf's to encode.
func unknown[M interface {
	*T
	ProtoReflect() protoreflect.Message
}, T any](m M) bool {
	return m != nil && len(m.ProtoReflect().GetUnknown()) != 0
}

// encodeAppendSuccess encodes a v1 Append's success answer as protobuf
// does, and reports whether m is one it encodes: a success with a
// revision or none, and a position or none, and no unknown fields.
func encodeAppendSuccess(m *api.AppendResp) ([]byte, bool) {
	r, ok := m.Result.(*api.AppendResp_Success_)
	if !ok || r.Success == nil || len(m.ProtoReflect().GetUnknown()) != 0 || len(r.Success.ProtoReflect().GetUnknown()) != 0 {
		return nil, false
	}
	var body [64]byte
	b := body[:0]
	switch rev := r.Success.CurrentRevisionOption.(type) {
	case nil:
	case *api.AppendResp_Success_CurrentRevision:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, rev.CurrentRevision)
	case *api.AppendResp_Success_NoStream:
		if !emptyMessage(rev.NoStream) {
			return nil, false
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	default:
		return nil, false
	}
	switch pos := r.Success.PositionOption.(type) {
	case nil:
	case *api.AppendResp_Success_Position:
		p := pos.Position
		if p != nil && len(p.ProtoReflect().GetUnknown()) != 0 {
			return nil, false
		}
		var at [22]byte // two tags and varints
		a := at[:0]
		if c := p.GetCommitPosition(); c != 0 {
			a = protowire.AppendTag(a, 1, protowire.VarintType)
			a = protowire.AppendVarint(a, c)
		}
		if pp := p.GetPreparePosition(); pp != 0 {
			a = protowire.AppendTag(a, 2, protowire.VarintType)
			a = protowire.AppendVarint(a, pp)
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, a)
	case *api.AppendResp_Success_NoPosition:
		if !emptyMessage(pos.NoPosition) {
			return nil, false
		}
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
	default:
		return nil, false
	}
	out := make([]byte, 0, 1+protowire.SizeVarint(uint64(len(b)))+len(b))
	out = protowire.AppendTag(out, 1, protowire.BytesType)
	return protowire.AppendBytes(out, b), true
}

// emptyMessage reports whether e, which has no fields, encodes to nothing.
func emptyMessage(e *shared.Empty) bool {
	return e == nil || len(e.ProtoReflect().GetUnknown()) == 0
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch v.(type) {
	case *api.AppendReq, *api.BatchAppendReq:
	default:
		return c.proto.Unmarshal(data, v)
	}
	// One buffer is taken as it is; several are copied into one from
	// gRPC's pool. The decoder copies what it keeps.
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	switch m := v.(type) {
	case *api.AppendReq:
		if decodeAppendReq(b, m) {
			return nil
		}
	case *api.BatchAppendReq:
		if decodeBatchAppendReq(b, m) {
			return nil
		}
	}
	return c.proto.Unmarshal(mem.BufferSlice{buf}, v)
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
	content api.AppendReq_ProposedMessage_
	pm      api.AppendReq_ProposedMessage
	id      uuidBox
}

func decodeProposed(b []byte, p *proposedBox) bool {
	e, ok := decodeEvent(b, &p.id)
	if !ok {
		return false
	}
	p.pm.Id, p.pm.Metadata, p.pm.CustomMetadata, p.pm.Data = e.id, e.meta, e.custom, e.data
	return true
}

// event is a proposed event of either append, decoded.
type event struct {
	id           *shared.UUID
	meta         map[string]string
	custom, data []byte
}

// decodeEvent decodes a proposed event (the same fields in a v1 Append
// and a BatchAppend), its id into u.
func decodeEvent(b []byte, u *uuidBox) (event, bool) {
	var e event
	var seenID, seenCustom, seenData bool
	var custom, data []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			return event{}, false
		}
		v, k := protowire.ConsumeBytes(b[n:])
		if k < 0 {
			return event{}, false
		}
		b = b[n+k:]
		switch {
		case num == 1 && !seenID:
			if !decodeUUID(v, u) {
				return event{}, false
			}
			seenID = true
			e.id = &u.id
		case num == 2:
			key, value, ok := decodeEntry(v)
			if !ok {
				return event{}, false
			}
			if e.meta == nil {
				e.meta = make(map[string]string, 2)
			}
			e.meta[key] = value
		case num == 3 && !seenCustom:
			custom, seenCustom = v, true
		case num == 4 && !seenData:
			data, seenData = v, true
		default:
			return event{}, false
		}
	}
	// Data and custom metadata in one allocation; empty is nil, as
	// protobuf decodes it.
	if len(data)+len(custom) > 0 {
		buf := make([]byte, len(data)+len(custom))
		copy(buf, data)
		copy(buf[len(data):], custom)
		if len(data) > 0 {
			e.data = buf[:len(data):len(data)]
		}
		if len(custom) > 0 {
			e.custom = buf[len(data):]
		}
	}
	return e, true
}

// uuidBox holds the messages of a UUID.
type uuidBox struct {
	id         shared.UUID
	structured shared.UUID_Structured_
	bits       shared.UUID_Structured
	str        shared.UUID_String_
}

func decodeUUID(b []byte, u *uuidBox) bool {
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
				u.bits.MostSignificantBits, seenMost = int64(x), true
			case num == 2 && !seenLeast:
				u.bits.LeastSignificantBits, seenLeast = int64(x), true
			default:
				return false
			}
		}
		u.structured.Structured = &u.bits
		u.id.Value = &u.structured
		return true
	case 2:
		if !utf8.Valid(v) {
			return false
		}
		u.str.String_ = string(v)
		u.id.Value = &u.str
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

// batchBox holds the messages of a BatchAppend request but its events, so
// that they take one allocation.
type batchBox struct {
	correlation uuidBox
	opts        api.BatchAppendReq_Options
	id          shared.StreamIdentifier
	pos         api.BatchAppendReq_Options_StreamPosition
	noneOf      api.BatchAppendReq_Options_NoStream
	anyOf       api.BatchAppendReq_Options_Any
	exists      api.BatchAppendReq_Options_StreamExists
	empty       emptypb.Empty
	deadline    api.BatchAppendReq_Options_Deadline
	duration    durationpb.Duration
	deadline21  api.BatchAppendReq_Options_Deadline_21_10_0
	timestamp   timestamppb.Timestamp
}

// batchEvent holds the messages of a BatchAppend's proposed event.
type batchEvent struct {
	pm api.BatchAppendReq_ProposedMessage
	id uuidBox
}

// decodeBatchAppendReq decodes b into m, as proto.Unmarshal does, and
// reports whether it did; when it did not, m is untouched and b is for
// protobuf to decode.
func decodeBatchAppendReq(b []byte, m *api.BatchAppendReq) bool {
	// Count the events first, to make them in one allocation.
	events := 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return false
		}
		k := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if k < 0 {
			return false
		}
		rest = rest[n+k:]
		if num == 3 {
			events++
		}
	}
	box := new(batchBox)
	var list []*api.BatchAppendReq_ProposedMessage
	var evs []batchEvent
	if events > 0 {
		list = make([]*api.BatchAppendReq_ProposedMessage, 0, events)
		evs = make([]batchEvent, events)
	}
	var seenCorrelation, seenOptions, seenFinal, final bool
	var opts *api.BatchAppendReq_Options
	var cid *shared.UUID
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		switch {
		case num == 4 && typ == protowire.VarintType && !seenFinal:
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return false
			}
			b, seenFinal, final = b[k:], true, v != 0
			continue
		case typ != protowire.BytesType:
			return false
		}
		v, k := protowire.ConsumeBytes(b)
		if k < 0 {
			return false
		}
		b = b[k:]
		switch {
		case num == 1 && !seenCorrelation:
			if !decodeUUID(v, &box.correlation) {
				return false
			}
			seenCorrelation, cid = true, &box.correlation.id
		case num == 2 && !seenOptions:
			if !decodeBatchOptions(v, box) {
				return false
			}
			seenOptions, opts = true, &box.opts
		case num == 3:
			ev := &evs[len(list)]
			e, ok := decodeEvent(v, &ev.id)
			if !ok {
				return false
			}
			ev.pm.Id, ev.pm.Metadata, ev.pm.CustomMetadata, ev.pm.Data = e.id, e.meta, e.custom, e.data
			list = append(list, &ev.pm)
		default:
			return false
		}
	}
	m.Reset()
	m.CorrelationId, m.Options, m.ProposedMessages, m.IsFinal = cid, opts, list, final
	return true
}

func decodeBatchOptions(b []byte, box *batchBox) bool {
	o := &box.opts
	var seenID, seenPos, seenDeadline bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if num == 2 && typ == protowire.VarintType && !seenPos {
			v, k := protowire.ConsumeVarint(b)
			if k < 0 {
				return false
			}
			b, seenPos = b[k:], true
			box.pos.StreamPosition = v
			o.ExpectedStreamPosition = &box.pos
			continue
		}
		if typ != protowire.BytesType {
			return false
		}
		v, k := protowire.ConsumeBytes(b)
		if k < 0 {
			return false
		}
		b = b[k:]
		switch {
		case num == 1 && !seenID:
			if !decodeStreamIdentifier(v, &box.id) {
				return false
			}
			seenID = true
			o.StreamIdentifier = &box.id
		case num >= 3 && num <= 5 && !seenPos:
			if len(v) != 0 {
				return false // an Empty with fields: protobuf's to keep
			}
			seenPos = true
			switch num {
			case 3:
				box.noneOf.NoStream = &box.empty
				o.ExpectedStreamPosition = &box.noneOf
			case 4:
				box.anyOf.Any = &box.empty
				o.ExpectedStreamPosition = &box.anyOf
			default:
				box.exists.StreamExists = &box.empty
				o.ExpectedStreamPosition = &box.exists
			}
		case num == 6 && !seenDeadline:
			seconds, nanos, ok := decodeSecondsNanos(v)
			if !ok {
				return false
			}
			seenDeadline = true
			box.timestamp.Seconds, box.timestamp.Nanos = seconds, nanos
			box.deadline21.Deadline_21_10_0 = &box.timestamp
			o.DeadlineOption = &box.deadline21
		case num == 7 && !seenDeadline:
			seconds, nanos, ok := decodeSecondsNanos(v)
			if !ok {
				return false
			}
			seenDeadline = true
			box.duration.Seconds, box.duration.Nanos = seconds, nanos
			box.deadline.Deadline = &box.duration
			o.DeadlineOption = &box.deadline
		default:
			return false
		}
	}
	return true
}

// decodeSecondsNanos decodes a google.protobuf.Timestamp or Duration.
func decodeSecondsNanos(b []byte) (int64, int32, bool) {
	var seconds int64
	var nanos int32
	var seenSeconds, seenNanos bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.VarintType {
			return 0, 0, false
		}
		v, k := protowire.ConsumeVarint(b[n:])
		if k < 0 {
			return 0, 0, false
		}
		b = b[n+k:]
		switch {
		case num == 1 && !seenSeconds:
			seconds, seenSeconds = int64(v), true
		case num == 2 && !seenNanos:
			nanos, seenNanos = int32(v), true
		default:
			return 0, 0, false
		}
	}
	return seconds, nanos, true
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
