package diskstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/internal/invariants"
)

// fakeEnv is a pipeline environment without a store: each group it
// commits takes one position per event and records, with sequence numbers,
// when it was handed off, synced and published.
type fakeEnv struct {
	t    *testing.T
	pipe *pipeline

	// early hands each group off before the committer has finished
	// with it (as the DB does once the frame is in the log), and
	// finishes it a little later.
	early bool

	// Owned by the committer.
	next    uint64
	handed  int // groups handed off
	drained []int

	// Shared with the syncer and the writers.
	mu        sync.Mutex
	durable   int // groups handed off before the last sync began
	handedNow int
	synced    int // syncs
	published []uint64
	syncErr   error
	failure   error
	groupOf   map[*request]int // the group (1-based) each request was in
	reqsOf    [][]*request     // the requests of each group, from group 1
}

func newFakeEnv(t *testing.T, maxGroupEvents int) *fakeEnv {
	return newFakeEnvBehind(t, maxGroupEvents, -1)
}

// newFakeEnvBehind syncs behind every every (as Options.VisibleBeforeSync
// does), unless every is negative.
func newFakeEnvBehind(t *testing.T, maxGroupEvents int, every time.Duration) *fakeEnv {
	e := &fakeEnv{t: t, groupOf: map[*request]int{}}
	e.pipe = newPipeline(e, maxGroupEvents)
	if every >= 0 {
		e.pipe.syncBehind(every)
	}
	e.pipe.start(0)
	return e
}

func (e *fakeEnv) commitGroup(ops []operation) []operation {
	if _, ok := ops[0].(*flushOp); ok {
		// Like rotate: everything handed off before is durable first.
		e.pipe.drain()
		e.mu.Lock()
		if e.durable != e.handed {
			e.t.Errorf("drain returned with %d groups handed off and %d durable", e.handed, e.durable)
		}
		e.mu.Unlock()
		e.drained = append(e.drained, e.handed)
	}
	p := &pending{first: e.next, done: make(chan struct{})}
	e.handed++
	e.mu.Lock()
	for _, op := range ops {
		for _, a := range op.appends() {
			e.next += uint64(len(a.Events))
		}
		p.reqs = append(p.reqs, op.base())
		e.groupOf[op.base()] = e.handed
	}
	e.reqsOf = append(e.reqsOf, p.reqs)
	e.handedNow = e.handed
	e.mu.Unlock()
	p.next = e.next
	if e.early {
		p.ready = make(chan struct{})
		e.pipe.handoff(p)
		time.Sleep(50 * time.Microsecond) // the index writes applied
		close(p.ready)
		return nil
	}
	e.pipe.handoff(p)
	return nil
}

func (e *fakeEnv) syncLog() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.synced++
	if e.syncErr != nil {
		return e.syncErr
	}
	// No write of a group this sync makes durable was answered before.
	for g := e.durable + 1; g <= e.handedNow; g++ {
		for _, r := range e.reqsOf[g-1] {
			select {
			case <-r.done:
				e.t.Errorf("a write of group %d answered before the sync that makes it durable", g)
			default:
			}
		}
	}
	e.durable = e.handedNow
	return nil
}

func (e *fakeEnv) publishGroups(groups []*pending, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range groups {
		if g.ready == nil {
			continue
		}
		select {
		case <-g.ready:
		default:
			e.t.Errorf("group [%d, %d) published before the committer finished with it", g.first, g.next)
		}
	}
	if err == nil {
		e.published = append(e.published, groups[len(groups)-1].next)
	}
}

func (e *fakeEnv) failed() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failure
}

func (e *fakeEnv) fail(err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failure == nil {
		e.failure = fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return e.failure
}

func appendOf(stream string, n int) *appendOp {
	return &appendOp{req: [1]cairn.AppendRequest{{Stream: stream, Events: make([]cairn.EventData, n)}}}
}

// TestPipelineAnswersOnlyDurableGroupsInOrder: through the pipeline alone,
// with concurrent writers, every write is answered only once a sync that
// began after its group was handed off has succeeded, groups are published
// in log order with positions that only rise, and a drain waits for every
// group in flight.
func TestPipelineAnswersOnlyDurableGroupsInOrder(t *testing.T) {
	t.Run("sync", func(t *testing.T) { answersOnlyDurableGroupsInOrder(t, newFakeEnv(t, 16)) })
	// Synced behind, the writers are still answered once durable.
	t.Run("behind", func(t *testing.T) { answersOnlyDurableGroupsInOrder(t, newFakeEnvBehind(t, 16, time.Millisecond)) })
	t.Run("behind-at-once", func(t *testing.T) { answersOnlyDurableGroupsInOrder(t, newFakeEnvBehind(t, 16, 0)) })
	// Groups handed off while the committer still applies them are
	// published and answered only once it has finished.
	early := func(e *fakeEnv) *fakeEnv { e.early = true; return e }
	t.Run("early", func(t *testing.T) { answersOnlyDurableGroupsInOrder(t, early(newFakeEnv(t, 16))) })
	t.Run("early-behind", func(t *testing.T) {
		answersOnlyDurableGroupsInOrder(t, early(newFakeEnvBehind(t, 16, time.Millisecond)))
	})
}

func answersOnlyDurableGroupsInOrder(t *testing.T, e *fakeEnv) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				var op operation = appendOf(fmt.Sprint("w", w), 1+i%5)
				if w == 0 && i%10 == 0 {
					op = &flushOp{}
				}
				if err := e.pipe.submit(ctx, op); err != nil {
					t.Error(err)
					return
				}
				e.mu.Lock()
				g, durable := e.groupOf[op.base()], e.durable
				e.mu.Unlock()
				if g > durable {
					t.Errorf("a write of group %d answered when %d groups were durable", g, durable)
				}
			}
		})
	}
	wg.Wait()
	if err := e.pipe.close(); err != nil {
		t.Fatal(err)
	}
	if err := e.pipe.close(); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("second close: %v, want ErrClosed", err)
	}
	for i := 1; i < len(e.published); i++ {
		if e.published[i] < e.published[i-1] {
			t.Fatalf("position %d published after %d", e.published[i], e.published[i-1])
		}
	}
	if last := e.published[len(e.published)-1]; last != e.next {
		t.Fatalf("last position published %d, want %d", last, e.next)
	}
	if len(e.drained) != 5 {
		t.Fatalf("%d drains, want 5", len(e.drained))
	}
	t.Logf("%d groups, %d syncs", e.handed, e.synced)
	if e.synced >= e.handed {
		t.Logf("no group commit in this run: %d groups took %d syncs", e.handed, e.synced)
	}
	if err := e.pipe.submit(ctx, appendOf("late", 1)); !errors.Is(err, cairn.ErrClosed) {
		t.Fatalf("write after close: %v, want ErrClosed", err)
	}
}

// TestPipelineSyncBehind: synced behind, a group is published, and its
// requests that ask told, before any sync; its writers are answered only
// once a sync made it durable; and a drain has the log synced at once
// rather than after the interval.
func TestPipelineSyncBehind(t *testing.T) {
	e := newFakeEnvBehind(t, 16, time.Hour)
	ctx := context.Background()
	op := appendOf("s", 2)
	op.visible = make(chan struct{})
	if err := e.pipe.enqueue(ctx, op); err != nil {
		t.Fatal(err)
	}
	<-op.visible
	e.mu.Lock()
	published, synced := e.published, e.synced
	e.mu.Unlock()
	if len(published) != 1 || published[0] != 2 || synced != 0 {
		t.Fatalf("published %v after %d syncs, want [2] before any", published, synced)
	}
	select {
	case <-op.done:
		t.Fatal("a write answered before a sync made it durable")
	default:
	}
	// The fake's flush drains (its own group then waits for the next
	// sync, unlike the store's, which answers a flush at once).
	if err := e.pipe.enqueue(ctx, &flushOp{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-op.done:
	case <-time.After(time.Minute):
		t.Fatal("a drain waited for the sync interval")
	}
	if op.err != nil {
		t.Fatal(op.err)
	}
	e.mu.Lock()
	synced = e.synced
	e.mu.Unlock()
	if synced == 0 {
		t.Fatal("answered without a sync")
	}
	// Close syncs what is left without waiting for the interval.
	late := appendOf("s", 1)
	if err := e.pipe.enqueue(ctx, late); err != nil {
		t.Fatal(err)
	}
	if err := e.pipe.close(); err != nil {
		t.Fatal(err)
	}
	<-late.done
	if late.err != nil {
		t.Fatal(late.err)
	}
}

// TestPipelineFailedSyncFailsTheGroupAndLaterWrites: a failed sync fails
// every write of the groups it covered, and later writes are refused
// without reaching the committer.
func TestPipelineFailedSyncFailsTheGroupAndLaterWrites(t *testing.T) {
	e := newFakeEnv(t, 16)
	defer e.pipe.close()
	ctx := context.Background()
	if err := e.pipe.submit(ctx, appendOf("s", 1)); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.syncErr = errors.New("EIO")
	e.mu.Unlock()
	if err := e.pipe.submit(ctx, appendOf("s", 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("write whose sync failed: %v, want ErrFailed", err)
	}
	e.mu.Lock()
	handed := e.handedNow
	e.mu.Unlock()
	if err := e.pipe.submit(ctx, appendOf("s", 1)); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failed sync: %v, want ErrFailed", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.handedNow != handed {
		t.Fatal("a write after the failure reached the committer")
	}
}

// TestPipelineBoundsGroups: a group holds at most MaxGroupEvents events,
// and an exclusive operation is alone in its group.
func TestPipelineBoundsGroups(t *testing.T) {
	p := &pipeline{maxGroupEvents: 10}
	queue := []operation{appendOf("a", 4), appendOf("b", 4), appendOf("c", 4), &purgeOp{}, appendOf("d", 1)}
	if n := p.groupLen(queue); n != 2 {
		t.Fatalf("group of %d, want 2 (10 events at most, each append counting one more)", n)
	}
	if n := p.groupLen(queue[2:]); n != 1 {
		t.Fatalf("group of %d before an exclusive operation, want 1", n)
	}
	if n := p.groupLen(queue[3:]); n != 1 {
		t.Fatalf("exclusive operation in a group of %d", n)
	}
}

// TestPipelinePanicsOnAGap: with invariants enabled, a group whose
// positions do not follow the last group's makes the syncer panic rather
// than publish a gap.
func TestPipelinePanicsOnAGap(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("invariants are off: build with -race or -tags invariants")
	}
	e := &fakeEnv{t: t, groupOf: map[*request]int{}}
	p := newPipeline(e, 16)
	p.next = 10
	v := violation(func() { p.complete([]*pending{{first: 12, next: 13, done: make(chan struct{})}}) })
	if v == nil {
		t.Fatal("a gap from position 10 to 12 did not panic")
	}
	t.Log(v)
	v = violation(func() { p.complete([]*pending{{first: 10, next: 9, done: make(chan struct{})}}) })
	if v == nil {
		t.Fatal("a group ending before it starts did not panic")
	}
}

// violation runs f and returns the invariant violation it panicked with.
func violation(f func()) (v *invariants.Violation) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); !ok || !errors.As(err, &v) {
				panic(r)
			}
		}
	}()
	f()
	return nil
}
