package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/dop251/goja"
)

// sourceEvent is an event a projection processes.
type sourceEvent struct {
	cairn.Event
	// pos is the event's place in the source: its global position, or its
	// version when the source is one stream.
	pos uint64
	// link is the link event this event was reached through, if any.
	link *cairn.Event
	// category is the category the source selected it by, if any.
	category string
	// deleted is set when the event is the deletion of a stream the
	// source selects; the handlers see it as KurrentDB shows it (see
	// deletedEvent), and only $deleted is called.
	deleted *cairn.Deletion
}

// KurrentDB's records of deletions: a tombstone is a $streamDeleted event
// of the stream at revision long.MaxValue, a soft delete a $metadata event
// of its metadata stream whose $tb is long.MaxValue.
const (
	typeStreamDeleted  = "$streamDeleted"
	typeStreamMetadata = "$metadata"
)

// deletedEvent returns the source event of the deletion record e, which
// records d: the event as KurrentDB records the delete, at the record's
// position and with its id and time.
func deletedEvent(e *cairn.Event, d cairn.Deletion, category string) sourceEvent {
	ev := *e
	if d.Hard {
		ev.StreamID, ev.Type, ev.Version = d.Stream, typeStreamDeleted, math.MaxInt64
		ev.ContentType, ev.Data, ev.Metadata = cairn.ContentBinary, nil, nil
	} else {
		ev.StreamID, ev.Type = "$$"+d.Stream, typeStreamMetadata
		ev.ContentType, ev.Data, ev.Metadata = cairn.ContentJSON, []byte(`{"$tb":9223372036854775807}`), nil
	}
	return sourceEvent{Event: ev, pos: e.Position, category: category, deleted: &d}
}

// eventPrototype makes the prototype of the event objects handlers receive:
// body (and its alias data), metadata and linkMetadata are parsed from the
// raw strings on first use, as KurrentDB does.
func (s *script) eventPrototype() *goja.Object {
	rt := s.rt
	proto := rt.NewObject()
	lazy := func(raw string, names ...string) goja.Value {
		return rt.ToValue(func(call goja.FunctionCall) goja.Value {
			this, ok := call.This.(*goja.Object)
			if !ok {
				return goja.Undefined()
			}
			var v goja.Value = goja.Undefined()
			r := this.Get(raw)
			if r == nil {
				r = goja.Undefined()
			}
			if str, ok := r.Export().(string); ok && str != "" && (raw != "bodyRaw" || this.Get("isJson").ToBoolean()) {
				parsed, err := s.parse(goja.Undefined(), r)
				if err != nil {
					panic(err)
				}
				v = parsed
			}
			for _, n := range names {
				_ = this.DefineDataProperty(n, v, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_TRUE)
			}
			return v
		})
	}
	body := lazy("bodyRaw", "body", "data")
	_ = proto.DefineAccessorProperty("body", body, nil, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = proto.DefineAccessorProperty("data", body, nil, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = proto.DefineAccessorProperty("metadata", lazy("metadataRaw", "metadata"), nil, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = proto.DefineAccessorProperty("linkMetadata", lazy("linkMetadataRaw", "linkMetadata"), nil, goja.FLAG_TRUE, goja.FLAG_FALSE)
	return proto
}

// envelope makes the object a handler receives for ev.
func (s *script) envelope(ev *sourceEvent, partition string) *goja.Object {
	o := s.rt.NewObject()
	_ = o.SetPrototype(s.proto)
	_ = o.Set("isJson", ev.ContentType == cairn.ContentJSON)
	_ = o.Set("bodyRaw", string(ev.Data))
	_ = o.Set("metadataRaw", string(ev.Metadata))
	if ev.link != nil {
		_ = o.Set("linkMetadataRaw", string(ev.link.Metadata))
	}
	_ = o.Set("streamId", ev.StreamID)
	_ = o.Set("sequenceNumber", ev.Version)
	_ = o.Set("eventType", ev.Type)
	_ = o.Set("eventId", ev.ID.String())
	_ = o.Set("partition", partition)
	if ev.category != "" {
		_ = o.Set("category", ev.category)
	}
	return o
}

// passes reports whether the handlers see ev at all: its type is one they
// handle, and its data is usable (KurrentDB skips JSON events whose data is
// not JSON, and events without data).
func (s *script) passes(ev *sourceEvent) bool {
	if !s.spec.AllEvents && !slices.Contains(s.spec.Events, ev.Type) {
		return false
	}
	if ev.ContentType == cairn.ContentJSON {
		return len(strings.TrimSpace(string(ev.Data))) > 0 && json.Valid(ev.Data)
	}
	return len(ev.Data) > 0
}

// partitionOf returns the partition ev belongs to; false skips the event
// (partitionBy returned neither a string nor a number).
func (s *script) partitionOf(ev *sourceEvent) (string, bool, error) {
	if s.spec.ByStream {
		return ev.StreamID, true, nil
	}
	if !s.spec.ByCustom {
		return "", true, nil
	}
	v, err := s.partitionFn(goja.Undefined(), s.envelope(ev, ""))
	if err != nil {
		return "", false, err
	}
	switch x := v.Export().(type) {
	case string:
		return x, x != "", nil
	case int64:
		return strconv.FormatInt(x, 10), true, nil
	case float64:
		return v.String(), true, nil
	}
	return "", false, nil
}

// initState returns the initial state of a partition: what $init returns,
// or an empty object.
func (s *script) initState() (goja.Value, error) {
	if s.init == nil {
		return s.rt.NewObject(), nil
	}
	return s.init(goja.Undefined())
}

// initSharedState returns the initial shared state of a bi-state query.
func (s *script) initSharedState() (goja.Value, error) {
	if s.initShared == nil {
		return s.rt.NewObject(), nil
	}
	return s.initShared(goja.Undefined())
}

// partitionCreated runs the $created handlers.
func (s *script) partitionCreated(state goja.Value, env *goja.Object) error {
	for _, fn := range s.created {
		if _, err := fn(goja.Undefined(), state, env); err != nil {
			return err
		}
	}
	return nil
}

// handle runs the handler of env's event on state and returns the new
// state: what the handler returns, or state itself when it returns
// undefined. Without a handler for the event, the state becomes the raw
// body, as in KurrentDB.
func (s *script) handle(state goja.Value, env *goja.Object, ev *sourceEvent) (goja.Value, error) {
	if d := ev.deleted; d != nil {
		// $deleted(state, event, streamId, isSoftDeleted).
		ns, err := s.deleted(goja.Undefined(), state, env, s.rt.ToValue(d.Stream), s.rt.ToValue(!d.Hard))
		if err != nil {
			return nil, err
		}
		if ns == nil || goja.IsUndefined(ns) {
			return state, nil
		}
		return ns, nil
	}
	eventType := ev.Type
	fn := s.handlers[eventType]
	if fn == nil {
		fn = s.anyHandler
	}
	if fn == nil {
		return env.Get("bodyRaw"), nil
	}
	ns, err := fn(goja.Undefined(), state, env)
	if err != nil {
		return nil, err
	}
	if ns == nil || goja.IsUndefined(ns) {
		return state, nil
	}
	return ns, nil
}

// result applies transformBy and filterBy to state; nil means no result.
func (s *script) result(state goja.Value) (goja.Value, error) {
	for _, t := range s.transforms {
		r, err := t.fn(goja.Undefined(), state)
		if err != nil {
			return nil, err
		}
		if t.filter {
			if b, ok := r.Export().(bool); !ok || !b {
				return nil, nil
			}
		} else {
			state = r
		}
		if state == nil || goja.IsUndefined(state) || goja.IsNull(state) {
			return nil, nil
		}
	}
	return state, nil
}

// beginHandler prepares the emit buffer for one event's handlers.
func (s *script) beginHandler(cause string, emitOK bool) {
	s.inHandler, s.emitOK, s.cause = true, emitOK, cause
	s.emits, s.violation = s.emits[:0], nil
}

func (s *script) endHandler() { s.inHandler = false }

// errEmitNotAllowed is KurrentDB's reason for a projection that emits
// without being allowed to.
var errEmitNotAllowed = errors.New("'emit' is not allowed by the projection/configuration/mode")

// violate records a misuse that faults the projection even if the script
// catches the exception thrown for it.
func (s *script) violate(err error) {
	if s.violation == nil {
		s.violation = err
	}
	panic(s.rt.NewTypeError(err.Error()))
}

func (s *script) checkEmit(what string) {
	if !s.inHandler {
		s.throw("%s can only be called while a handler runs", what)
	}
	if !s.emitOK {
		s.violate(errEmitNotAllowed)
	}
}

func (s *script) streamArg(what string, v goja.Value) string {
	str, ok := v.Export().(string)
	if !ok || strings.TrimSpace(str) == "" {
		s.throw("%s: the stream must be a non-empty string", what)
	}
	if err := validateOutputStream("stream", str); err != nil {
		s.violate(fmt.Errorf("%s to %q: %v", what, str, err))
	}
	return str
}

func (s *script) push(e emitted) {
	if len(s.emits) >= s.lim.maxEmits {
		s.violate(fmt.Errorf("a handler emitted more than %d events", s.lim.maxEmits))
	}
	if n := len(e.data) + len(e.meta); n > s.lim.maxEventBytes {
		s.violate(fmt.Errorf("an event emitted to %q has %d bytes of data and metadata, the limit is %d", e.stream, n, s.lim.maxEventBytes))
	}
	s.emits = append(s.emits, e)
}

// metadata builds an emitted event's metadata: the properties of the
// script's metadata object (if any), each as JSON, and $causedBy, the id of
// the event being handled.
func (s *script) metadata(what string, v goja.Value) []byte {
	m := map[string]json.RawMessage{}
	if v != nil && !goja.IsUndefined(v) {
		o, ok := v.(*goja.Object)
		if !ok || goja.IsNull(v) {
			s.throw("%s: the metadata must be an object", what)
		}
		for _, k := range o.Keys() {
			b, err := marshalJS(s.rt, o.Get(k), s.lim.maxEventBytes)
			if err != nil {
				s.violate(fmt.Errorf("%s: metadata %q cannot be written: %w", what, k, err))
			}
			if b != nil {
				m[k] = b
			}
		}
	}
	if _, ok := m["$causedBy"]; !ok {
		m["$causedBy"] = appendJSONString(nil, s.cause)
	}
	b, err := json.Marshal(m)
	if err != nil {
		s.violate(fmt.Errorf("%s: metadata cannot be written: %w", what, err))
	}
	return b
}

// jsEmit is emit(streamId, eventType, eventBody, metadata).
func (s *script) jsEmit(call goja.FunctionCall) goja.Value {
	s.checkEmit("emit")
	if len(call.Arguments) < 3 {
		s.throw("emit: call it with a stream, an event type, a body and, optionally, metadata")
	}
	stream := s.streamArg("emit", call.Argument(0))
	typ, ok := call.Argument(1).Export().(string)
	if !ok || strings.TrimSpace(typ) == "" {
		s.throw("emit: the event type must be a non-empty string")
	}
	body, ok := call.Argument(2).(*goja.Object)
	if !ok || goja.IsNull(call.Argument(2)) {
		s.throw("emit: the event body must be an object")
	}
	data, err := marshalJS(s.rt, body, s.lim.maxEventBytes)
	if err != nil {
		s.violate(fmt.Errorf("emit to %q: the body cannot be written: %w", stream, err))
	}
	var meta goja.Value
	if len(call.Arguments) > 3 {
		meta = call.Argument(3)
	}
	s.push(emitted{stream: stream, typ: typ, data: data, meta: s.metadata("emit", meta)})
	return goja.Undefined()
}

// jsLinkTo is linkTo(streamId, event, metadata): a $> event whose data is
// "<sequenceNumber>@<streamId>".
func (s *script) jsLinkTo(call goja.FunctionCall) goja.Value {
	s.checkEmit("linkTo")
	if len(call.Arguments) != 2 && len(call.Arguments) != 3 {
		s.throw("linkTo: call it with a stream, an event and, optionally, metadata")
	}
	stream := s.streamArg("linkTo", call.Argument(0))
	ev, ok := call.Argument(1).(*goja.Object)
	if !ok || goja.IsNull(call.Argument(1)) {
		s.throw("linkTo: the event must be an object")
	}
	num, src := ev.Get("sequenceNumber"), ev.Get("streamId")
	var target string
	isStr := false
	if src != nil {
		target, isStr = src.Export().(string)
	}
	if num == nil || !goja.IsNumber(num) || !isStr {
		s.throw("Invalid link to event %v@%v", num, src)
	}
	s.push(emitted{
		stream: stream, typ: typeLink, binary: true,
		data: []byte(strconv.FormatInt(num.ToInteger(), 10) + "@" + target),
		meta: s.metadata("linkTo", call.Argument(2)),
	})
	return goja.Undefined()
}

// jsLinkStreamTo is linkStreamTo(streamId, linkedStreamId, metadata): a $@
// event whose data is the linked stream's id.
func (s *script) jsLinkStreamTo(call goja.FunctionCall) goja.Value {
	s.checkEmit("linkStreamTo")
	stream := s.streamArg("linkStreamTo", call.Argument(0))
	linked, ok := call.Argument(1).Export().(string)
	if !ok || linked == "" {
		s.throw("linkStreamTo: the linked stream must be a non-empty string")
	}
	s.push(emitted{
		stream: stream, typ: typeStreamReference, binary: true,
		data: []byte(linked),
		meta: s.metadata("linkStreamTo", call.Argument(2)),
	})
	return goja.Undefined()
}
