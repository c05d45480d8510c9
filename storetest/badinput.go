package storetest

// Rules of bad input: refused with an error that names it, nothing
// written.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

func testBadInput(t *testing.T, nb NewBackend) {
	s, b := open(t, nb, cairn.Options{MaxEventBytes: 1024})
	ctx := context.Background()
	dupID := uuid.New()
	cases := []struct {
		name  string
		field string
		call  func() error
	}{
		{"empty stream", "stream", func() error { _, err := s.Append(ctx, "", cairn.Any, ev("E")); return err }},
		{"reserved stream", "stream", func() error { _, err := s.Append(ctx, "$all", cairn.Any, ev("E")); return err }},
		{"control character", "stream", func() error { _, err := s.Append(ctx, "a\x00b", cairn.Any, ev("E")); return err }},
		{"long stream", "stream", func() error {
			_, err := s.Append(ctx, strings.Repeat("x", cairn.MaxStreamIDBytes+1), cairn.Any, ev("E"))
			return err
		}},
		{"invalid UTF-8", "stream", func() error { _, err := s.Append(ctx, "a\xffb", cairn.Any, ev("E")); return err }},
		{"no events", "events", func() error { _, err := s.Append(ctx, "s", cairn.Any); return err }},
		{"empty type", "events[1].type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, ev("E"), cairn.EventData{Data: []byte("{}")})
			return err
		}},
		{"long type", "events[0].type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, ev(strings.Repeat("t", cairn.MaxTypeBytes+1)))
			return err
		}},
		{"oversized event", "events[0]", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "Big", Data: make([]byte, 1025)})
			return err
		}},
		{"empty tag", "events[0].tags[1]", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "T", Tags: []string{"ok", ""}})
			return err
		}},
		{"unknown content type", "events[0].content_type", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "T", ContentType: 9})
			return err
		}},
		{"duplicate ids", "events[1].id", func() error {
			_, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{ID: dupID, Type: "T"}, cairn.EventData{ID: dupID, Type: "T"})
			return err
		}},
		{"bad expected version", "expected", func() error { _, err := s.Append(ctx, "s", cairn.Exact(-3), ev("E")); return err }},
		{"empty batch", "requests", func() error { _, err := s.AppendBatch(ctx); return err }},
		{"batch repeats a stream", "requests[1].stream", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")},
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")})
			return err
		}},
		{"batch repeats an event id", "requests[1].events[0].id", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: []cairn.EventData{{ID: dupID, Type: "T"}}},
				cairn.AppendRequest{Stream: "t", Events: []cairn.EventData{{ID: dupID, Type: "T"}}})
			return err
		}},
		{"check-only request with a condition", "condition", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")},
				cairn.AppendRequest{Stream: "t", Expected: cairn.NoStream, Condition: &cairn.AppendCondition{}})
			return err
		}},
		{"batch with a bad event", "events[0].type", func() error {
			_, err := s.AppendBatch(ctx,
				cairn.AppendRequest{Stream: "s", Events: evs(1, "E")},
				cairn.AppendRequest{Stream: "t", Events: []cairn.EventData{{}}})
			return err
		}},
		{"commit with a nil projection", "projections[0]", func() error {
			_, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "s", Events: evs(1, "E")}, nil)
			return err
		}},
		{"zero count", "count", func() error { _, err := s.ReadStream(ctx, "s", 0, 0, cairn.Forward); return err }},
		{"negative count", "count", func() error { _, err := s.ReadAll(ctx, 0, -1, cairn.Forward); return err }},
		{"unknown direction", "direction", func() error { _, err := s.ReadAll(ctx, 0, 1, cairn.Direction(7)); return err }},
		{"negative from", "from", func() error { _, err := s.ReadStream(ctx, "s", -2, 1, cairn.Backward); return err }},
		{"forward from the end", "from", func() error { _, err := s.ReadStream(ctx, "s", cairn.StreamEnd, 1, cairn.Forward); return err }},
		{"negative truncate", "before", func() error { return s.TruncateStream(ctx, "s", -1) }},
		{"delete reserved", "stream", func() error { return s.DeleteStream(ctx, "$all", cairn.Any) }},
		{"delete expected version", "expected", func() error { return s.DeleteStream(ctx, "s", cairn.Exact(-7)) }},
		{"snapshot version", "snapshot version", func() error {
			return s.CommitSnapshot(ctx, cairn.Snapshot{StreamID: "s", Version: -1})
		}},
		{"snapshot bounds", "max", func() error { _, _, err := s.GetSnapshot(ctx, "s", 5, 1); return err }},
		{"read model table", "table", func() error { _, _, err := s.ReadModelGet(ctx, "", "k"); return err }},
	}
	for _, c := range cases {
		err := c.call()
		var iae *cairn.InvalidArgumentError
		if !errors.Is(err, cairn.ErrInvalidArgument) || !errors.As(err, &iae) {
			t.Errorf("%s: error %v, want an InvalidArgumentError", c.name, err)
			continue
		}
		if iae.Field != c.field || iae.Reason == "" || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: error %q names field %q, want %q and a reason", c.name, err, iae.Field, c.field)
		}
	}
	var bad []error
	for _, err := range s.Stream(ctx, "s", -5, cairn.Forward) {
		bad = append(bad, err)
	}
	if len(bad) != 1 || !errors.Is(bad[0], cairn.ErrInvalidArgument) {
		t.Errorf("Stream with a bad start yielded %v", bad)
	}
	if has, err := b.HasEvents(ctx); has || err != nil {
		t.Fatalf("after only bad input, HasEvents = %v, %v; nothing may be written", has, err)
	}
	if sn, ok := b.(cairn.Snapshotter); ok {
		if _, found, _ := sn.GetSnapshot(ctx, "s", -1, 1<<62); found {
			t.Fatal("a rejected snapshot was stored")
		}
	}
}
