package storetest

// Rules of notifications: the Store's own signal, and the engine's
// Notifier, driven directly.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// notifyWait bounds the wait for a notification that must come. It only
// keeps a broken engine from hanging the suite; it is not a latency target.
const notifyWait = time.Minute

// heads records the calls of a function registered with a Notifier.
type heads struct {
	active atomic.Int32 // calls in progress
	wake   chan struct{}

	mu      sync.Mutex
	calls   int
	max     uint64
	seen    bool
	unread  []uint64 // heads not yet checked for visibility
	overlap bool
}

func newHeads() *heads { return &heads{wake: make(chan struct{}, 1)} }

// fn is the function registered with the Notifier.
func (h *heads) fn(head uint64) {
	overlap := h.active.Add(1) > 1
	h.mu.Lock()
	h.calls++
	h.overlap = h.overlap || overlap
	h.unread = append(h.unread, head)
	if !h.seen || head > h.max {
		h.max, h.seen = head, true
	}
	h.mu.Unlock()
	h.active.Add(-1)
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *heads) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// waitFor waits until fn has been called with a head of at least pos. It
// checks that the events up to every head reported are visible: a reader
// woken by the call finds them. Visibility only grows, so an event missing
// now was missing when fn was called.
func (h *heads) waitFor(t *testing.T, s *cairn.Store, pos uint64) {
	t.Helper()
	timeout := time.NewTimer(notifyWait)
	defer timeout.Stop()
	for {
		h.mu.Lock()
		unread, done, overlap, last, seen := h.unread, h.seen && h.max >= pos, h.overlap, h.max, h.seen
		h.unread = nil
		h.mu.Unlock()
		if overlap {
			t.Fatal("two calls of one registered function overlapped")
		}
		for _, head := range unread {
			got, err := s.ReadAll(context.Background(), head, 1, cairn.Forward)
			if err != nil {
				t.Fatalf("ReadAll from the notified head %d: %v", head, err)
			}
			if len(got) != 1 || got[0].Position != head {
				t.Fatalf("notified of head %d, but a read from there finds %d events (%v): the event is not visible", head, len(got), positions(got))
			}
		}
		if done {
			return
		}
		select {
		case <-h.wake:
		case <-timeout.C:
			t.Fatalf("no call reported position %d within %v (last head reported %d, any: %v)", pos, notifyWait, last, seen)
		}
	}
}

// Every commit made after Notify returns is followed by a call whose head
// covers it, and the events up to a reported head are visible.
func testNotifierCommits(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	n := need[cairn.Notifier](t, b, "Notifier")
	ctx := context.Background()
	h := newHeads()
	stop := n.Notify(h.fn)
	defer stop()
	for i := range 3 {
		res := mustAppend(t, s, fmt.Sprint("n-", i), cairn.Any, evs(1+i, "E")...)
		h.waitFor(t, s, res.Position)
	}
	results, err := s.AppendBatch(ctx,
		cairn.AppendRequest{Stream: "n-0", Events: evs(2, "E")},
		cairn.AppendRequest{Stream: "n-9", Events: evs(3, "E")})
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, s, results[1].Position)
	if _, ok := b.(cairn.TxCommitter); ok {
		res, err := s.CommitAll(ctx, cairn.AppendRequest{Stream: "n-1", Events: evs(2, "E")},
			func(ctx context.Context, tx cairn.Tx, _ []cairn.Event) error { return tx.Put(ctx, "t", "k", nil) })
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor(t, s, res.Position)
	}
	// Concurrent writers: the last of their commits is reported.
	var last atomic.Uint64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range 10 {
				res, err := s.Append(ctx, fmt.Sprint("w-", w), cairn.Any, evs(1+w%2, "E")...)
				if err != nil {
					t.Error(err)
					return
				}
				for p := last.Load(); p < res.Position && !last.CompareAndSwap(p, res.Position); p = last.Load() {
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	h.waitFor(t, s, last.Load())
}

// Once stop returns, the function is not called again; stop may be called
// twice; another registration goes on.
func testNotifierStop(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	n := need[cairn.Notifier](t, b, "Notifier")
	ctx := context.Background()
	first, other := newHeads(), newHeads()
	stopFirst := n.Notify(first.fn)
	stopOther := n.Notify(other.fn)
	defer stopOther()
	res := mustAppend(t, s, "s", cairn.Any, ev("E"))
	first.waitFor(t, s, res.Position)
	// Stop while a writer commits, so that notifications are on their way
	// when stop is called.
	var wg sync.WaitGroup
	defer wg.Wait()
	underway := make(chan struct{}) // closed after 5 appends, or when the writer ends
	wg.Go(func() {
		var once sync.Once
		defer once.Do(func() { close(underway) })
		for i := range 40 {
			if _, err := s.Append(ctx, "s", cairn.Any, ev("E")); err != nil {
				t.Error(err)
				return
			}
			if i == 4 {
				once.Do(func() { close(underway) })
			}
		}
	})
	<-underway
	stopFirst()
	calls := first.count()
	stopFirst()
	wg.Wait()
	if t.Failed() {
		return
	}
	// The other registration hears of the last commit: by then the engine
	// has delivered what it was going to.
	res = mustAppend(t, s, "s", cairn.Any, ev("E"))
	other.waitFor(t, s, res.Position)
	if got := first.count(); got != calls {
		t.Fatalf("%d calls after stop returned", got-calls)
	}
}

// Close ends every registration; stop still works after it, and Notify on
// a closed engine never calls its function.
func testNotifierClose(t *testing.T, nb NewBackend) {
	s, b := open(t, nb)
	n := need[cairn.Notifier](t, b, "Notifier")
	h := newHeads()
	stop := n.Notify(h.fn)
	res := mustAppend(t, s, "s", cairn.Any, ev("E"))
	h.waitFor(t, s, res.Position)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := h.count()
	stop()
	stop()
	late := newHeads()
	n.Notify(late.fn)()
	if got := h.count(); got != calls {
		t.Fatalf("%d calls after Close returned", got-calls)
	}
	if got := late.count(); got != 0 {
		t.Fatalf("Notify on a closed engine called its function %d times", got)
	}
}
