package storetest

// Rules of notifications.

import (
	"testing"

	"github.com/cairndb/cairn"
)

func testNotification(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	changed := s.Changes()
	select {
	case <-changed:
		t.Fatal("Changes fired before any append")
	default:
	}
	res := mustAppend(t, s, "s", cairn.NoStream, evs(2, "E")...)
	select {
	case <-changed:
	default:
		t.Fatal("Changes did not fire when Append returned")
	}
	if head, ok := s.Head(); !ok || head < res.Position {
		t.Fatalf("Head = %d, %v; want at least %d", head, ok, res.Position)
	}
}
