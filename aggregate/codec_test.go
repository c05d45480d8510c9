package aggregate_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
)

type pointerEvent struct{ V int }

func (*pointerEvent) isTallyEvent() {}

type notAnEvent struct{}

func TestRegisterRejects(t *testing.T) {
	c := tallyCodec(t)
	for name, err := range map[string]error{
		"name taken":      aggregate.Register[*pointerEvent](c, "Added"),
		"type taken":      aggregate.Register[added](c, "Added2"),
		"empty name":      aggregate.Register[*pointerEvent](c, ""),
		"control in name": aggregate.Register[*pointerEvent](c, "a\tb"),
		"long name":       aggregate.Register[*pointerEvent](c, strings.Repeat("x", cairn.MaxTypeBytes+1)),
		"not an event":    aggregate.Register[notAnEvent](c, "NotAnEvent"),
		"interface":       aggregate.Register[tallyEvent](c, "Any"),
	} {
		if err == nil {
			t.Errorf("%s: Register accepted it", name)
		}
	}
	if got := strings.Join(c.Names(), ","); got != "Added,Noted" {
		t.Errorf("after rejected registrations the names are %s", got)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("MustRegister of a taken name did not panic")
			}
		}()
		aggregate.MustRegister[*pointerEvent](c, "Noted")
	}()
}

func TestCodecRoundTrip(t *testing.T) {
	c := tallyCodec(t)
	aggregate.MustRegister[*pointerEvent](c, "Pointer")
	for _, ev := range []tallyEvent{added{ID: 7, N: -3}, noted{Text: "héllo"}, &pointerEvent{V: 9}} {
		d, err := c.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if d.ContentType != cairn.ContentJSON {
			t.Errorf("%T encoded as %v", ev, d.ContentType)
		}
		back, err := c.Decode(cairn.Event{EventData: d})
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := ev.(*pointerEvent); ok {
			if q, ok := back.(*pointerEvent); !ok || *q != *p {
				t.Errorf("round trip of %+v gave %#v", p, back)
			}
		} else if back != ev {
			t.Errorf("round trip of %#v gave %#v", ev, back)
		}
	}
}

func TestCodecErrors(t *testing.T) {
	c := tallyCodec(t)
	_, err := c.Encode(&pointerEvent{})
	if err == nil || !strings.Contains(err.Error(), "*aggregate_test.pointerEvent") {
		t.Errorf("Encode of an unregistered type: %v, want an error naming the type", err)
	}
	if _, err := c.Encode(nil); err == nil {
		t.Error("Encode(nil) succeeded")
	}
	_, err = c.Decode(cairn.Event{EventData: cairn.EventData{Type: "Gone"}, StreamID: "tally-1", Version: 4})
	var unknown *aggregate.UnknownEventTypeError
	if !errors.As(err, &unknown) || unknown.Type != "Gone" || unknown.Stream != "tally-1" || unknown.Version != 4 {
		t.Errorf("Decode of an unknown type: %v", err)
	}
	_, err = c.Decode(cairn.Event{EventData: cairn.EventData{Type: "Added", Data: []byte("{")}, StreamID: "tally-1", Version: 5})
	if err == nil || errors.Is(err, aggregate.ErrUnknownEventType) || !strings.Contains(err.Error(), `"Added"`) {
		t.Errorf("Decode of bad data: %v, want a decode error naming the type", err)
	}
}
