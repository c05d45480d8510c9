package kurrentdbsvc

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/protobuf/proto"
)

// TestReadEventEncoding: the bytes readEvent sends decode, on the client's
// side, to the Read response built as messages: for events and links, ids
// structured and as text, empty and present fields, zero and large
// numbers.
func TestReadEventEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	event := func() cairn.Event {
		e := cairn.Event{
			EventData: cairn.EventData{ID: uuid.New(), Type: strings.Repeat("T", 1+rng.IntN(300)), ContentType: cairn.ContentType(rng.IntN(2))},
			StreamID:  strings.Repeat("s", rng.IntN(200)),
			Version:   rng.Int64N(4) * rng.Int64N(1<<40),
			Position:  rng.Uint64N(4) * rng.Uint64N(1<<62),
			Created:   time.Unix(0, rng.Int64N(1<<62)).UTC(),
		}
		switch rng.IntN(5) {
		case 0:
			e.ID = uuid.Nil
		case 1:
			e.ID[0], e.ID[8] = 0x80, 0xff // negative halves
		}
		if rng.IntN(2) == 0 {
			e.Data = make([]byte, rng.IntN(70000))
		}
		if rng.IntN(2) == 0 {
			e.Metadata = []byte(`{"a":1}`)
		}
		return e
	}
	var buf []byte
	for i := range 300 {
		r := &links.Resolved{Event: event()}
		switch i % 3 {
		case 1: // a resolved link: the event and the link
			target := event()
			r.Event.Type, r.Link, r.Target = links.LinkType, true, &target
		case 2: // a link whose target is gone
			r.Event.Type, r.Link = links.LinkType, true
		}
		for _, asString := range []bool{false, true} {
			got, err := proto.Marshal(readEvent(r, asString, &buf))
			if err != nil {
				t.Fatal(err)
			}
			var decoded api.ReadResp
			if err := proto.Unmarshal(got, &decoded); err != nil {
				t.Fatalf("event %d: the bytes do not decode: %v", i, err)
			}
			if want := readEventMessage(r, asString); !proto.Equal(&decoded, want) {
				t.Fatalf("event %d (ids as text %v): decoded\n%v\nwant\n%v", i, asString, &decoded, want)
			}
		}
	}
}

// readEventMessage builds as messages the Read response that readEvent
// encodes: the form of KurrentDB's ResolvedEvent, an event alone, or a
// resolved link (event and link), or a link whose target is gone (link
// alone), with the original event's position.
func readEventMessage(r *links.Resolved, uuidString bool) *api.ReadResp {
	event, link := r.Parts()
	re := &api.ReadResp_ReadEvent{
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.Event.Position},
	}
	if event != nil {
		re.Event = recordedEventMessage(*event, uuidString)
	}
	if link != nil {
		re.Link = recordedEventMessage(*link, uuidString)
	}
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: re}}
}

// recordedEventMessage renders e as a RecordedEvent message. cairn has one
// global position per event; it is both the commit and the prepare
// position.
func recordedEventMessage(e cairn.Event, uuidString bool) *api.ReadResp_ReadEvent_RecordedEvent {
	return &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               uuidToProto(e.ID, uuidString),
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.StreamID)},
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
