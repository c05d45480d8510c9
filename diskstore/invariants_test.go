package diskstore

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/cairndb/cairn/internal/invariants"
)

// TestUnexpectedFlushFailsLoudly: a memtable flushed by pebble that the
// engine did not set aside is logged at ERROR, and with invariants enabled
// it panics.
func TestUnexpectedFlushFailsLoudly(t *testing.T) {
	var logged syncBuffer
	d := &DB{lg: slog.New(slog.NewTextHandler(&logged, nil))}
	d.sealed.Store(2)
	d.noteFlushed(2)
	if logged.String() != "" {
		t.Fatalf("flushes the engine asked for were reported:\n%s", logged.String())
	}
	v := violation(func() { d.noteFlushed(1) })
	if !strings.Contains(logged.String(), "level=ERROR") || !strings.Contains(logged.String(), "did not set aside") {
		t.Fatalf("an unexpected flush was not logged at ERROR:\n%s", logged.String())
	}
	switch {
	case invariants.Enabled && v == nil:
		t.Fatal("an unexpected flush did not panic with invariants enabled")
	case !invariants.Enabled && v != nil:
		t.Fatalf("a production build panicked: %v", v)
	}
}

// TestMarkerOrder: the order writeGroup asserts between the markers of
// consecutive frames.
func TestMarkerOrder(t *testing.T) {
	m := marker{seg: 2, end: 100, next: 50}
	for _, c := range []struct {
		next  marker
		after bool
	}{
		{marker{seg: 2, end: 140, next: 50}, true},  // a frame without events
		{marker{seg: 2, end: 140, next: 60}, true},  // a frame with events
		{marker{seg: 3, end: 40, next: 60}, true},   // in the next segment
		{marker{seg: 2, end: 100, next: 50}, false}, // the same frame
		{marker{seg: 2, end: 90, next: 60}, false},  // before it
		{marker{seg: 1, end: 900, next: 60}, false}, // in an earlier segment
		{marker{seg: 2, end: 140, next: 40}, false}, // positions going back
	} {
		if got := c.next.after(m); got != c.after {
			t.Errorf("%+v after %+v: %v, want %v", c.next, m, got, c.after)
		}
	}
}
