package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"unicode/utf8"

	"github.com/cairndb/cairn"
)

// ErrUnknownEventType is matched (with errors.Is) by the error returned when
// a stored event's type has no registration in the codec reading it. See
// [UnknownEventTypeError].
var ErrUnknownEventType = errors.New("unknown event type")

// UnknownEventTypeError reports a stored event whose type name the codec does
// not know: the event was written by a newer program, by another aggregate,
// or by hand.
type UnknownEventTypeError struct {
	// Type is the stored event's type name.
	Type string
	// Stream and Version say where the event is.
	Stream  string
	Version int64
}

func (e *UnknownEventTypeError) Error() string {
	return fmt.Sprintf("event %d of stream %q: unknown event type %q: register it with aggregate.Register", e.Version, e.Stream, e.Type)
}

// Unwrap returns [ErrUnknownEventType].
func (e *UnknownEventTypeError) Unwrap() error { return ErrUnknownEventType }

// Encoding turns Go values into bytes and back. [JSON] is the default.
type Encoding interface {
	// ContentType is recorded on every event the encoding writes.
	ContentType() cairn.ContentType
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the encoding/json [Encoding]. Only exported fields are encoded, so
// event and state types meant for it should keep their data in exported
// fields.
var JSON Encoding = jsonEncoding{}

type jsonEncoding struct{}

func (jsonEncoding) ContentType() cairn.ContentType     { return cairn.ContentJSON }
func (jsonEncoding) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonEncoding) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Codec converts an aggregate's events, values of the Go type E (usually an
// interface that the event types implement), to and from stored events. Each
// concrete event type is registered under a type name with [Register]; the
// name is what the store records as the event's type, so it must not change
// once events are written.
//
// A Codec is safe for concurrent use. Registration normally happens once,
// before the codec is used.
type Codec[E any] struct {
	enc    Encoding
	mu     sync.RWMutex
	byName map[string]registration[E]
	byType map[reflect.Type]string
}

type registration[E any] struct {
	goType reflect.Type
	decode func(data []byte) (E, error)
}

// NewCodec returns a codec with no registered types that encodes with enc;
// a nil enc means [JSON].
func NewCodec[E any](enc Encoding) *Codec[E] {
	if enc == nil {
		enc = JSON
	}
	return &Codec[E]{
		enc:    enc,
		byName: map[string]registration[E]{},
		byType: map[reflect.Type]string{},
	}
}

// Encoding returns the codec's encoding.
func (c *Codec[E]) Encoding() Encoding { return c.enc }

// Register records that events of the Go type T are stored under the type
// name name. T must be a concrete type assignable to E; a value type and a
// pointer type are different registrations, so register the one the decide
// function returns. Registering a name or a type twice is an error, as is a
// name the store would reject (empty, longer than [cairn.MaxTypeBytes], not
// UTF-8, or with control characters).
//
//	codec := aggregate.NewCodec[AccountEvent](nil)
//	err := aggregate.Register[Deposited](codec, "Deposited")
func Register[T, E any](c *Codec[E], name string) error {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return fmt.Errorf("register %s as %q: an event type must be concrete, not an interface", t, name)
	}
	var zero T
	if _, ok := any(zero).(E); !ok {
		return fmt.Errorf("register %s as %q: %s does not implement %s", t, name, t, reflect.TypeFor[E]())
	}
	if err := checkTypeName(name); err != nil {
		return fmt.Errorf("register %s: %w", t, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.byName[name]; ok {
		return fmt.Errorf("register %s as %q: the name is already registered for %s", t, name, r.goType)
	}
	if n, ok := c.byType[t]; ok {
		return fmt.Errorf("register %s as %q: the type is already registered as %q", t, name, n)
	}
	enc := c.enc
	c.byName[name] = registration[E]{
		goType: t,
		decode: func(data []byte) (E, error) {
			var v T
			if err := enc.Unmarshal(data, &v); err != nil {
				var zero E
				return zero, err
			}
			return any(v).(E), nil
		},
	}
	c.byType[t] = name
	return nil
}

// MustRegister is [Register] for program initialisation: it panics when
// Register returns an error.
func MustRegister[T, E any](c *Codec[E], name string) {
	if err := Register[T](c, name); err != nil {
		panic("aggregate: " + err.Error())
	}
}

func checkTypeName(name string) error {
	switch {
	case name == "":
		return errors.New("the type name must not be empty")
	case len(name) > cairn.MaxTypeBytes:
		return fmt.Errorf("the type name is %d bytes long, the limit is %d", len(name), cairn.MaxTypeBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("the type name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("the type name %q has a control character (%U)", name, r)
		}
	}
	return nil
}

// Names returns the registered type names in sorted order.
func (c *Codec[E]) Names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Encode returns the stored form of event: its registered type name, the
// encoding's content type and the encoded data. The event's ID is left for
// the store to assign. An event whose Go type is not registered is an error
// that names the type.
func (c *Codec[E]) Encode(event E) (cairn.EventData, error) {
	t := reflect.TypeOf(any(event))
	if t == nil {
		return cairn.EventData{}, errors.New("encode event: the event is nil")
	}
	c.mu.RLock()
	name, ok := c.byType[t]
	c.mu.RUnlock()
	if !ok {
		return cairn.EventData{}, fmt.Errorf("encode event: the Go type %s is not registered with the codec (registered: %v)", t, c.Names())
	}
	data, err := c.enc.Marshal(event)
	if err != nil {
		return cairn.EventData{}, fmt.Errorf("encode event %q: %w", name, err)
	}
	return cairn.EventData{Type: name, ContentType: c.enc.ContentType(), Data: data}, nil
}

// Decode returns the Go value of a stored event. An event whose type name is
// not registered returns an [*UnknownEventTypeError] naming it.
func (c *Codec[E]) Decode(e cairn.Event) (E, error) {
	c.mu.RLock()
	r, ok := c.byName[e.Type]
	c.mu.RUnlock()
	if !ok {
		var zero E
		return zero, &UnknownEventTypeError{Type: e.Type, Stream: e.StreamID, Version: e.Version}
	}
	v, err := r.decode(e.Data)
	if err != nil {
		return v, fmt.Errorf("event %d of stream %q: decode %q: %w", e.Version, e.StreamID, e.Type, err)
	}
	return v, nil
}

// Projection returns a [cairn.Projection] that decodes each recorded event
// with c and hands it to fn, together with the event as recorded (its
// stream, version and position). The projection runs inside the commit: an
// error from fn, or an event c cannot decode, aborts the commit.
func (c *Codec[E]) Projection(fn func(ctx context.Context, tx cairn.Tx, event E, recorded cairn.Event) error) cairn.Projection {
	return func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		for _, rec := range events {
			ev, err := c.Decode(rec)
			if err != nil {
				return err
			}
			if err := fn(ctx, tx, ev, rec); err != nil {
				return err
			}
		}
		return nil
	}
}
