package cairn_test

import (
	"context"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// countingNotifier is an engine with a Notifier that counts who listens.
type countingNotifier struct {
	*memstore.Store
	mu         sync.Mutex
	registered int
	stopped    int
	fns        []func(uint64)
}

func (n *countingNotifier) Notify(fn func(head uint64)) (stop func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.registered++
	n.fns = append(n.fns, fn)
	var once sync.Once
	return func() {
		once.Do(func() {
			n.mu.Lock()
			n.stopped++
			n.mu.Unlock()
		})
	}
}

func (n *countingNotifier) counts() (registered, stopped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.registered, n.stopped
}

// A Store that only writes does not listen to the engine's notifications,
// which on PostgreSQL wake every listening connection at every commit in
// the database; the first subscriber's Changes or Head starts them, once,
// and what the engine reports then wakes the subscriber.
func TestStoreListensOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	for _, first := range []string{"Changes", "Head"} {
		t.Run(first, func(t *testing.T) {
			n := &countingNotifier{Store: memstore.New()}
			s := cairn.NewStore(n, cairn.Options{})
			for range 3 {
				if _, err := s.Append(ctx, "s", cairn.Any, cairn.EventData{Type: "E"}); err != nil {
					t.Fatal(err)
				}
			}
			if reg, _ := n.counts(); reg != 0 {
				t.Fatalf("a Store that only wrote registered %d times with the engine's Notifier; want 0", reg)
			}
			var changed <-chan struct{}
			if first == "Changes" {
				changed = s.Changes()
			} else {
				s.Head()
				changed = s.Changes()
			}
			s.Changes()
			s.Head()
			if reg, _ := n.counts(); reg != 1 {
				t.Fatalf("after Changes and Head: %d registrations; want 1", reg)
			}
			// The engine's first report, for a commit of another
			// process, wakes the subscriber.
			n.mu.Lock()
			fn := n.fns[0]
			n.mu.Unlock()
			fn(41)
			select {
			case <-changed:
			default:
				t.Fatal("the engine's report did not wake the subscriber")
			}
			if h, ok := s.Head(); !ok || h != 41 {
				t.Fatalf("Head = %d, %v; want 41, true", h, ok)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if reg, stopped := n.counts(); reg != 1 || stopped != 1 {
				t.Fatalf("after Close: %d registrations, %d stopped; want 1, 1", reg, stopped)
			}
			s.Changes()
			s.Head()
			if reg, _ := n.counts(); reg != 1 {
				t.Fatalf("Changes after Close registered again: %d registrations", reg)
			}
		})
	}
}
