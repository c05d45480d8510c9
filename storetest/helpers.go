package storetest

// Helpers shared by the rules: events to append, reads, and assertions.

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

func ev(typ string) cairn.EventData {
	return cairn.EventData{Type: typ, Data: []byte(`{"n":1}`)}
}

func evs(n int, typ string) []cairn.EventData {
	out := make([]cairn.EventData, n)
	for i := range out {
		out[i] = cairn.EventData{Type: typ, Data: fmt.Appendf(nil, `{"i":%d}`, i)}
	}
	return out
}

func withIDs(events []cairn.EventData) []cairn.EventData {
	for i := range events {
		events[i].ID = uuid.New()
	}
	return events
}

func mustAppend(t *testing.T, s *cairn.Store, stream string, expected cairn.ExpectedVersion, events ...cairn.EventData) cairn.AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), stream, expected, events...)
	if err != nil {
		t.Fatalf("Append(%q, %v, %d events): %v", stream, expected, len(events), err)
	}
	return res
}

// readAll returns the whole global log, forward.
func readAll(t *testing.T, s *cairn.Store) []cairn.Event {
	t.Helper()
	var out []cairn.Event
	for e, err := range s.All(context.Background(), 0, cairn.Forward) {
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// readStream returns the visible events of stream, forward, or the error.
func readStream(s *cairn.Store, stream string) ([]cairn.Event, error) {
	var out []cairn.Event
	for e, err := range s.Stream(context.Background(), stream, 0, cairn.Forward) {
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// listStreams lists the streams of s but the engine's record of
// deletions (cairn.DeletionsStream), which the rule DeletionRecords checks.
func listStreams(t *testing.T, s *cairn.Store) []string {
	t.Helper()
	var out []string
	for id, err := range s.Streams(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if id == cairn.DeletionsStream {
			continue
		}
		out = append(out, id)
	}
	return out
}

func versions(events []cairn.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

func positions(events []cairn.Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

func seq[T int64 | uint64](from, to T) []T {
	var out []T
	if from <= to {
		for v := from; v <= to; v++ {
			out = append(out, v)
		}
		return out
	}
	for v := from; ; v-- {
		out = append(out, v)
		if v == to {
			break
		}
	}
	return out
}

func wantVersion(t *testing.T, s *cairn.Store, stream string, want int64) {
	t.Helper()
	got, err := s.StreamVersion(context.Background(), stream)
	if want < 0 {
		if !errors.Is(err, cairn.ErrStreamNotFound) {
			t.Fatalf("StreamVersion(%q) = %d, %v; want ErrStreamNotFound", stream, got, err)
		}
		return
	}
	if err != nil || got != want {
		t.Fatalf("StreamVersion(%q) = %d, %v; want %d", stream, got, err, want)
	}
}

func wantLogLen(t *testing.T, s *cairn.Store, want int) {
	t.Helper()
	if got := len(readAll(t, s)); got != want {
		t.Fatalf("global log has %d events, want %d", got, want)
	}
}

func wantWrongVersion(t *testing.T, err error, stream string, expected cairn.ExpectedVersion, actual int64) {
	t.Helper()
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("error = %v, want ErrWrongExpectedVersion", err)
	}
	var wev *cairn.WrongExpectedVersionError
	if !errors.As(err, &wev) {
		t.Fatalf("error %v is not a *WrongExpectedVersionError", err)
	}
	if wev.Stream != stream || wev.Expected != expected || wev.Actual != actual {
		t.Fatalf("WrongExpectedVersionError{%q, %v, %d}, want {%q, %v, %d}", wev.Stream, wev.Expected, wev.Actual, stream, expected, actual)
	}
}

func need[T any](t *testing.T, b cairn.Backend, what string) T {
	t.Helper()
	v, ok := b.(T)
	if !ok {
		t.Skipf("the engine does not implement %s", what)
	}
	return v
}
