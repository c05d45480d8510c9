package storetest

// Rules of the engine's life: cancelled contexts, health, size and Close.

import (
	"context"
	"errors"
	"testing"

	"github.com/cairndb/cairn"
)

func testCancelledContext(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Append(ctx, "s", cairn.Any, ev("E")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := s.ReadAll(ctx, 0, 10, cairn.Forward); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll with a cancelled context: %v, want context.Canceled", err)
	}
	wantVersion(t, s, "s", -1)
}

func testHealthAndSize(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	ctx := context.Background()
	if err := s.Health(ctx); err != nil {
		t.Fatalf("Health of a fresh store: %v", err)
	}
	if _, ok := b.(cairn.DiskSizer); !ok {
		return
	}
	if n, err := s.DiskBytes(ctx); err != nil || n < 0 {
		t.Fatalf("DiskBytes = %d, %v", n, err)
	}
}

func testClose(t *testing.T, nb NewBackend) {
	s, _ := open(t, nb)
	ctx := context.Background()
	mustAppend(t, s, "s", cairn.NoStream, ev("E"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Append(ctx, "s", cairn.Any, ev("E")); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, 0, 1, cairn.Forward); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("ReadAll after Close: %v, want ErrClosed", err)
	}
}
