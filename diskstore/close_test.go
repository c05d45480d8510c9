package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCloseUnderLoad closes the store while writers, readers and a
// compaction run: every call ends, either done or with ErrClosed, and what
// was acknowledged is there after a reopen.
func TestCloseUnderLoad(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewMem()
	db, err := diskstore.Open("db", diskstore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	started := make(chan struct{}, 16)
	for w := range 8 {
		wg.Go(func() {
			stream := fmt.Sprint("w", w)
			for i := 0; ; i++ {
				res, err := s.Append(ctx, stream, cairn.Any, cairn.EventData{Type: "E"})
				if errors.Is(err, cairn.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				acked[stream] = res.Version
				mu.Unlock()
				if i == 10 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for {
				_, err := s.ReadAll(ctx, 0, 100, cairn.Forward)
				if errors.Is(err, cairn.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if err := s.Compact(ctx); err != nil && !errors.Is(err, cairn.ErrClosed) {
			t.Errorf("compact: %v", err)
		}
	})
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	db, err = diskstore.Open("db", diskstore.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	defer s.Close()
	for stream, v := range acked {
		got, err := s.StreamVersion(ctx, stream)
		if err != nil || got < v {
			t.Fatalf("%s after reopen: version %d, %v; acknowledged %d", stream, got, err, v)
		}
	}
}
