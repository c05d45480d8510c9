package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cairndb/cairn/storeurl"
)

// The cairn command links every engine a store URL can name: none of its
// URLs is refused for want of one. (The URLs are ones the engine itself
// refuses at once, so that nothing is opened or dialled.)
func TestEnginesLinked(t *testing.T) {
	ctx := context.Background()
	for _, raw := range []string{
		"memory:",
		filepath.Join(t.TempDir(), "data"),
		"postgres://cairn@127.0.0.1/cairn?sslmode=no-such-mode",
		"cairn://127.0.0.1:1?tls=maybe",
	} {
		s, err := storeurl.Open(ctx, raw, storeurl.Options{})
		if errors.Is(err, storeurl.ErrNoEngine) {
			t.Errorf("Open(%q): %v", raw, err)
		}
		if err == nil {
			s.Close()
		}
	}
}
