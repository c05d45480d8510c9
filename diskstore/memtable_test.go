package diskstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// TestMemtablesSetAsideByTheEngine: pebble must never set a memtable aside
// for flushing by itself, since that memtable could hold index writes of a
// group whose frame is not durable yet. With concurrent appends, and commits
// whose projections write many tiny entries (the worst ratio of pebble's
// reservation to the bytes written), every memtable pebble flushes must be
// one the engine set aside: with a small memtable, flushed again and again,
// and with the default one in a new store, where pebble starts with
// memtables smaller than the one configured.
func TestMemtablesSetAsideByTheEngine(t *testing.T) {
	t.Run("small memtable", func(t *testing.T) { memtablesSetAside(t, 256<<10, 10) })
	t.Run("default memtable", func(t *testing.T) { memtablesSetAside(t, 0, 1) })
	// Sizes pebble's doubling from 256 KiB does not reach exactly: the
	// memtable grows to them all the same (spacerBytes).
	t.Run("24 MiB memtable", func(t *testing.T) { memtablesSetAside(t, 24<<20, 1) })
	t.Run("40 MiB memtable", func(t *testing.T) { memtablesSetAside(t, 40<<20, 1) })
}

func memtablesSetAside(t *testing.T, memtable uint64, minFlushes int64) {
	ctx := context.Background()
	var logged syncBuffer
	db, err := Open(t.TempDir(), Options{NoSync: true, MemTableBytes: memtable, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tiny := func(n int) cairn.Projection {
		return func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
			for i := range n {
				if err := tx.Put(ctx, "t", fmt.Sprint(events[0].Position, ".", i), []byte{1}); err != nil {
					return err
				}
			}
			return nil
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 150 {
				ev := []cairn.EventData{{ID: uuid.New(), Type: "E", Data: []byte("x")}}
				var err error
				if i%3 == 0 {
					_, err = db.CommitAll(ctx, cairn.AppendRequest{Stream: fmt.Sprint("p", w), Expected: cairn.Any, Events: ev}, []cairn.Projection{tiny(1 + i%200)})
				} else {
					_, err = db.Append(ctx, fmt.Sprint("s", w), cairn.Any, ev)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	flushed, sealed := db.flushed.Load(), db.sealed.Load()
	t.Logf("memtables flushed %d, set aside by the engine %d; memtable of %d bytes", flushed, sealed, db.memCap)
	if flushed > sealed {
		t.Fatalf("pebble flushed %d memtables, the engine set aside %d", flushed, sealed)
	}
	if want := cmp.Or(memtable, 32<<20); db.memCap != want {
		t.Errorf("the memtable holds %d bytes, not the %d configured: it did not grow", db.memCap, want)
	}
	if flushed < minFlushes {
		t.Fatalf("only %d memtables flushed: the test does not exercise flushing", flushed)
	}
	if strings.Contains(logged.String(), "did not set aside") {
		t.Fatalf("the engine reported a flush it did not ask for:\n%s", logged.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// BenchmarkGrowMemtable: the time growMemtable takes in a store just
// opened, during which the writers of a new process wait, once, at the
// first flush of the memtable (32 MiB configured, the default). Most of it
// is the first touch of the memory the spacer is written to; later
// iterations in the same process reuse memory the first one touched, so
// measure one iteration per process:
//
//	go test -c -o /tmp/ds.test ./diskstore
//	for i in $(seq 10); do /tmp/ds.test -test.run '^$' -test.bench GrowMemtable -test.benchtime 1x; done
func BenchmarkGrowMemtable(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		db, err := Open(b.TempDir(), Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// The committer is idle: nothing was appended.
		if err := db.growMemtable(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if db.memCap != 32<<20 {
			b.Fatalf("the memtable holds %d bytes, not %d", db.memCap, 32<<20)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
