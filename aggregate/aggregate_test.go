package aggregate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
	"github.com/cairndb/cairn/memstore"
	"github.com/google/uuid"
)

// The test aggregate: a tally of numbered additions under a limit.

type tally struct {
	Count int
	Sum   int
	Last  int // ID of the last addition
}

type add struct {
	ID    int
	N     int
	Limit int // refuse when Sum+N would exceed it; 0: no limit
}

type tallyEvent interface{ isTallyEvent() }

type added struct {
	ID int
	N  int
}

func (added) isTallyEvent() {}

type noted struct{ Text string }

func (noted) isTallyEvent() {}

var errOverLimit = errors.New("over the limit")

func decideTally(s tally, c add) ([]tallyEvent, error) {
	switch {
	case c.N == 0:
		return nil, nil
	case c.Limit > 0 && s.Sum+c.N > c.Limit:
		return nil, fmt.Errorf("add %d to %d: %w %d", c.N, s.Sum, errOverLimit, c.Limit)
	}
	return []tallyEvent{added{ID: c.ID, N: c.N}}, nil
}

func evolveTally(s tally, e tallyEvent) tally {
	if a, ok := e.(added); ok {
		s.Count++
		s.Sum += a.N
		s.Last = a.ID
	}
	return s
}

func tallyCodec(t testing.TB) *aggregate.Codec[tallyEvent] {
	c := aggregate.NewCodec[tallyEvent](nil)
	if err := aggregate.Register[added](c, "Added"); err != nil {
		t.Fatal(err)
	}
	if err := aggregate.Register[noted](c, "Noted"); err != nil {
		t.Fatal(err)
	}
	return c
}

func tallyDef(t testing.TB, projections ...cairn.Projection) aggregate.Definition[tally, add, tallyEvent] {
	return aggregate.Definition[tally, add, tallyEvent]{
		Category:    "tally",
		Decide:      decideTally,
		Evolve:      evolveTally,
		Codec:       tallyCodec(t),
		Projections: projections,
	}
}

func newRepo(t testing.TB, store *cairn.Store, def aggregate.Definition[tally, add, tallyEvent], opts aggregate.Options) *aggregate.Repository[tally, add, tallyEvent] {
	t.Helper()
	r, err := aggregate.New(store, def, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// newID returns a fresh aggregate id, so that tests never share streams on
// engines whose data outlives the test (PostgreSQL).
func newID() string { return uuid.NewString() }

// fold computes the state after events from scratch, without the
// repository.
func fold(t testing.TB, codec *aggregate.Codec[tallyEvent], events []cairn.Event) tally {
	t.Helper()
	var s tally
	for _, e := range events {
		ev, err := codec.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		s = evolveTally(s, ev)
	}
	return s
}

func readStream(t testing.TB, store *cairn.Store, stream string) []cairn.Event {
	t.Helper()
	var out []cairn.Event
	for e, err := range store.GetEvents(context.Background(), stream, 0, cairn.NoMaxSequence) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestAggregate(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				run  func(t *testing.T, store *cairn.Store, peer func() *cairn.Store)
			}{
				{"ConcurrentNodes", testConcurrentNodes},
				{"RuleUnderContention", testRuleUnderContention},
				{"ReplayEveryVersion", testReplayEveryVersion},
				{"ProjectionFailure", testProjectionFailure},
				{"DomainError", testDomainError},
				{"UnknownEventType", testUnknownEventType},
				{"CacheSeesOtherNodes", testCacheSeesOtherNodes},
				{"ConflictGivesUp", testConflictGivesUp},
				{"SnapshotPolicy", testSnapshotPolicy},
				{"SnapshotSchema", testSnapshotSchema},
				{"DeleteAndRecreate", testDeleteAndRecreate},
				{"DeleteAndRecreateWithSnapshot", testDeleteAndRecreateWithSnapshot},
				{"CacheSeesDeletion", testCacheSeesDeletion},
				{"Truncation", testTruncation},
			} {
				t.Run(tc.name, func(t *testing.T) {
					store, peer := eng.open(t)
					tc.run(t, store, peer)
				})
			}
		})
	}
}

// contended are options for many writers on one aggregate: enough attempts
// that every command gets through, short waits.
var contended = aggregate.Options{
	MaxAttempts: 1000,
	BackoffBase: 100 * time.Microsecond,
	BackoffMax:  5 * time.Millisecond,
}

// Two repositories over one store, 50 goroutines, one aggregate: every
// command is applied exactly once, the final state is the sequential one,
// and snapshots never go back.
func testConcurrentNodes(t *testing.T, store *cairn.Store, peer func() *cairn.Store) {
	ctx := context.Background()
	opts := contended
	opts.SnapshotEvery = 3
	nodes := []*aggregate.Repository[tally, add, tallyEvent]{
		newRepo(t, store, tallyDef(t), opts),
		newRepo(t, peer(), tallyDef(t), opts),
	}
	id := newID()
	stream := nodes[0].StreamID(id)

	// Watch the stored snapshot while the commands run: its version never
	// decreases, and its state is the state at its version.
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		last := int64(-1)
		for {
			snap, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62)
			if err != nil {
				watched <- err
				return
			}
			if ok {
				var s tally
				if err := json.Unmarshal(snap.Data, &s); err != nil {
					watched <- err
					return
				}
				switch {
				case snap.Version < last:
					watched <- fmt.Errorf("snapshot went back from version %d to %d", last, snap.Version)
					return
				case s.Count != int(snap.Version)+1:
					watched <- fmt.Errorf("snapshot at version %d holds %d additions", snap.Version, s.Count)
					return
				}
				last = snap.Version
			}
			select {
			case <-stop:
				watched <- nil
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()

	const workers = 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			node := nodes[i%len(nodes)]
			res, err := node.Handle(ctx, id, add{ID: i + 1, N: i + 1})
			if err != nil {
				errs <- fmt.Errorf("command %d: %w", i+1, err)
				return
			}
			if len(res.Events) != 1 || res.Events[0] != (added{ID: i + 1, N: i + 1}) {
				errs <- fmt.Errorf("command %d: result events %v", i+1, res.Events)
			}
			if res.State.Last != i+1 {
				errs <- fmt.Errorf("command %d: result state %+v is not after its own event", i+1, res.State)
			}
		})
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-watched; err != nil {
		t.Error(err)
	}

	events := readStream(t, store, stream)
	seen := map[int]int{}
	for _, e := range events {
		var a added
		if err := json.Unmarshal(e.Data, &a); err != nil {
			t.Fatal(err)
		}
		seen[a.ID]++
	}
	for i := 1; i <= workers; i++ {
		if seen[i] != 1 {
			t.Errorf("command %d applied %d times", i, seen[i])
		}
	}
	want := tally{Count: workers, Sum: workers * (workers + 1) / 2}
	for n, node := range nodes {
		got, version, err := node.Fetch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want.Last = got.Last // the last command to commit is not fixed
		if got != want || version != workers-1 {
			t.Errorf("node %d: state %+v at version %d, want %+v at %d", n, got, version, want, workers-1)
		}
	}
	for _, node := range nodes {
		node.Close() // writes the queued snapshots
	}
	snap, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62)
	if err != nil || !ok {
		t.Fatalf("no snapshot after %d commands with a policy of 3: %v", workers, err)
	}
	if snap.Version < 47 {
		t.Errorf("newest snapshot at version %d, want ≥ 47 (sequence 48)", snap.Version)
	}
}

// Decisions are made on the current state: 50 concurrent withdrawals of 1
// from a limit of 20 apply exactly 20 times, and the rest are refused
// without writing.
func testRuleUnderContention(t *testing.T, store *cairn.Store, peer func() *cairn.Store) {
	ctx := context.Background()
	nodes := []*aggregate.Repository[tally, add, tallyEvent]{
		newRepo(t, store, tallyDef(t), contended),
		newRepo(t, peer(), tallyDef(t), contended),
	}
	id := newID()
	const workers, limit = 50, 20
	var applied, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, err := nodes[i%2].Handle(ctx, id, add{ID: i + 1, N: 1, Limit: limit})
			switch {
			case err == nil:
				applied.Add(1)
			case errors.Is(err, errOverLimit):
				refused.Add(1)
			default:
				t.Errorf("command %d: %v", i+1, err)
			}
		})
	}
	wg.Wait()
	if applied.Load() != limit || refused.Load() != workers-limit {
		t.Errorf("applied %d and refused %d, want %d and %d", applied.Load(), refused.Load(), limit, workers-limit)
	}
	if n := len(readStream(t, store, nodes[0].StreamID(id))); n != limit {
		t.Errorf("stream holds %d events, want %d", n, limit)
	}
}

// Replay to every version of a long aggregate equals the state built from
// scratch, with and without a snapshot at or before the version.
func testReplayEveryVersion(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{})
	codec := tallyCodec(t)
	id := newID()
	const half = 100
	for i := range half {
		if _, err := repo.Handle(ctx, id, add{ID: i + 1, N: i%7 + 1}); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := repo.Snapshot(ctx, id); err != nil || v != half-1 {
		t.Fatalf("Snapshot = %d, %v; want %d", v, err, half-1)
	}
	for i := half; i < 2*half; i++ {
		if _, err := repo.Handle(ctx, id, add{ID: i + 1, N: i%7 + 1}); err != nil {
			t.Fatal(err)
		}
	}
	events := readStream(t, store, repo.StreamID(id))
	if len(events) != 2*half {
		t.Fatalf("stream holds %d events, want %d", len(events), 2*half)
	}
	for v := range int64(2 * half) {
		got, err := repo.Replay(ctx, id, v)
		if err != nil {
			t.Fatalf("Replay(%d): %v", v, err)
		}
		if want := fold(t, codec, events[:v+1]); got != want {
			t.Fatalf("Replay(%d) = %+v, want %+v", v, got, want)
		}
	}
	if _, err := repo.Replay(ctx, id, 2*half); !errors.Is(err, aggregate.ErrVersionNotFound) {
		t.Errorf("Replay past the end: %v, want ErrVersionNotFound", err)
	}
	if _, err := repo.Replay(ctx, id, -1); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("Replay(-1): %v, want ErrInvalidArgument", err)
	}
	if _, err := repo.Replay(ctx, newID(), 0); !errors.Is(err, aggregate.ErrVersionNotFound) {
		t.Errorf("Replay of an aggregate without events: %v, want ErrVersionNotFound", err)
	}
}

var errProjection = errors.New("projection refused")

// A projection failure leaves neither events nor read-model rows.
func testProjectionFailure(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	id := newID()
	codec := tallyCodec(t)
	const table = "tally_sums"
	sum := codec.Projection(func(ctx context.Context, tx cairn.Tx, ev tallyEvent, rec cairn.Event) error {
		a, ok := ev.(added)
		if !ok {
			return nil
		}
		old, _, err := tx.Get(ctx, table, id)
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(string(old))
		return tx.Put(ctx, table, id, []byte(strconv.Itoa(n+a.N)))
	})
	failOn13 := codec.Projection(func(ctx context.Context, tx cairn.Tx, ev tallyEvent, rec cairn.Event) error {
		if a, ok := ev.(added); ok && a.N == 13 {
			return errProjection
		}
		return tx.Put(ctx, table, id+"/last", []byte(strconv.FormatInt(rec.Version, 10)))
	})
	repo := newRepo(t, store, tallyDef(t, sum, failOn13), aggregate.Options{})
	if _, err := repo.Handle(ctx, id, add{ID: 1, N: 5}); err != nil {
		t.Fatal(err)
	}
	_, err := repo.Handle(ctx, id, add{ID: 2, N: 13})
	if !errors.Is(err, errProjection) {
		t.Fatalf("Handle with a failing projection: %v, want errProjection", err)
	}
	if v, err := store.StreamVersion(ctx, repo.StreamID(id)); err != nil || v != 0 {
		t.Errorf("stream version %d, %v after the failed commit; want 0", v, err)
	}
	for key, want := range map[string]string{id: "5", id + "/last": "0"} {
		got, ok, err := store.ReadModelGet(ctx, table, key)
		if err != nil || !ok || string(got) != want {
			t.Errorf("read model %q = %q, %v, %v; want %q", key, got, ok, err, want)
		}
	}
	// A later command commits normally, on the state without the refused
	// event.
	res, err := repo.Handle(ctx, id, add{ID: 3, N: 1})
	if err != nil || res.Version != 1 || res.State.Sum != 6 {
		t.Fatalf("Handle after the failure = %+v, %v; want version 1, sum 6", res, err)
	}
	if got, _, _ := store.ReadModelGet(ctx, table, id); string(got) != "6" {
		t.Errorf("read model sum %q, want 6", got)
	}
}

// A domain error is returned as is and writes nothing; so does an event the
// codec cannot encode, and an empty decision.
func testDomainError(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{})
	id := newID()
	stream := repo.StreamID(id)
	if _, err := repo.Handle(ctx, id, add{ID: 1, N: 5, Limit: 3}); !errors.Is(err, errOverLimit) {
		t.Fatalf("Handle over the limit: %v, want errOverLimit", err)
	}
	if ok, err := store.StreamExists(ctx, stream); err != nil || ok {
		t.Fatalf("stream exists = %v, %v after a refused command", ok, err)
	}
	res, err := repo.Handle(ctx, id, add{ID: 1, N: 0})
	if err != nil || res.Version != -1 || len(res.Events) != 0 {
		t.Fatalf("empty decision = %+v, %v; want version -1 and no events", res, err)
	}
	if ok, err := store.StreamExists(ctx, stream); err != nil || ok {
		t.Fatalf("stream exists = %v, %v after an empty decision", ok, err)
	}

	type unregistered struct{ tallyEvent }
	def := tallyDef(t)
	def.Decide = func(tally, add) ([]tallyEvent, error) {
		return []tallyEvent{added{ID: 1, N: 1}, unregistered{}}, nil
	}
	bad := newRepo(t, store, def, aggregate.Options{})
	_, err = bad.Handle(ctx, id, add{})
	if err == nil || !strings.Contains(err.Error(), "unregistered") || !strings.Contains(err.Error(), "events[1]") {
		t.Fatalf("Handle with an unregistered event type: %v, want an error naming the type and the event", err)
	}
	if ok, err := store.StreamExists(ctx, stream); err != nil || ok {
		t.Fatalf("stream exists = %v, %v after an unencodable event", ok, err)
	}
	if _, err := repo.Handle(ctx, "", add{ID: 1, N: 1}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("Handle with an empty id: %v, want ErrInvalidArgument", err)
	}
}

// An event type the codec does not know is reported by name.
func testUnknownEventType(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{})
	id := newID()
	if _, err := repo.Handle(ctx, id, add{ID: 1, N: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, repo.StreamID(id), cairn.Exact(0), cairn.EventData{Type: "Mystery", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, _, err := repo.Fetch(ctx, id)
	var unknown *aggregate.UnknownEventTypeError
	if !errors.As(err, &unknown) || unknown.Type != "Mystery" || unknown.Version != 1 {
		t.Fatalf("Fetch over an unknown event type: %v, want an UnknownEventTypeError for Mystery at version 1", err)
	}
	if !errors.Is(err, aggregate.ErrUnknownEventType) || !strings.Contains(err.Error(), `"Mystery"`) {
		t.Errorf("error %q does not match ErrUnknownEventType or name the type", err)
	}
	if _, err := repo.Handle(ctx, id, add{ID: 2, N: 1}); !errors.Is(err, aggregate.ErrUnknownEventType) {
		t.Errorf("Handle over an unknown event type: %v", err)
	}
}

// A state cached by one node is brought up to date with another node's
// writes before it is used to decide.
func testCacheSeesOtherNodes(t *testing.T, store *cairn.Store, peer func() *cairn.Store) {
	ctx := context.Background()
	a := newRepo(t, store, tallyDef(t), aggregate.Options{})
	b := newRepo(t, peer(), tallyDef(t), aggregate.Options{})
	id := newID()
	if _, err := a.Handle(ctx, id, add{ID: 1, N: 1, Limit: 3}); err != nil {
		t.Fatal(err)
	}
	if s, v, err := a.Load(ctx, id); err != nil || s.Sum != 1 || v != 0 {
		t.Fatalf("Load on a = %+v, %d, %v", s, v, err)
	}
	if _, err := b.Handle(ctx, id, add{ID: 2, N: 2, Limit: 3}); err != nil {
		t.Fatal(err)
	}
	// a's cached sum is 1; the store's is 3, so another 1 is over the limit.
	if _, err := a.Handle(ctx, id, add{ID: 3, N: 1, Limit: 3}); !errors.Is(err, errOverLimit) {
		t.Fatalf("a decided on a stale state: %v, want errOverLimit", err)
	}
	if s, v, err := a.Fetch(ctx, id); err != nil || s.Sum != 3 || v != 1 {
		t.Fatalf("Fetch on a = %+v, %d, %v; want sum 3 at version 1", s, v, err)
	}
	if s, v, err := a.Load(ctx, id); err != nil || s.Sum != 3 || v != 1 {
		t.Fatalf("Load on a after Fetch = %+v, %d, %v; want sum 3 at version 1", s, v, err)
	}
	// The first command on a new aggregate expects no stream: a node whose
	// view is empty loses to the other node and decides again.
	id2 := newID()
	if _, _, err := a.Fetch(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Handle(ctx, id2, add{ID: 1, N: 1}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Handle(ctx, id2, add{ID: 2, N: 1})
	if err != nil || res.Version != 1 || res.State.Sum != 2 {
		t.Fatalf("Handle on a = %+v, %v; want sum 2 at version 1", res, err)
	}
}

// When every attempt conflicts, Handle gives up after MaxAttempts decisions
// and returns the typed conflict.
func testConflictGivesUp(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	id := newID()
	other := newRepo(t, store, tallyDef(t), aggregate.Options{CacheSize: -1})
	decisions := 0
	def := tallyDef(t)
	def.Decide = func(s tally, c add) ([]tallyEvent, error) {
		decisions++
		// Another writer commits between this decision's read and its
		// commit, every time.
		if _, err := other.Handle(ctx, id, add{ID: 100 + decisions, N: 1}); err != nil {
			return nil, err
		}
		return decideTally(s, c)
	}
	repo := newRepo(t, store, def, aggregate.Options{MaxAttempts: 4, BackoffBase: time.Microsecond})
	_, err := repo.Handle(ctx, id, add{ID: 1, N: 1})
	var wrong *cairn.WrongExpectedVersionError
	if !errors.Is(err, cairn.ErrWrongExpectedVersion) || !errors.As(err, &wrong) {
		t.Fatalf("Handle under constant conflict: %v, want a WrongExpectedVersionError", err)
	}
	if decisions != 4 {
		t.Errorf("decided %d times, want 4", decisions)
	}
	if wrong.Stream != repo.StreamID(id) || wrong.Actual != 3 {
		t.Errorf("conflict %+v, want stream %q at actual version 3", wrong, repo.StreamID(id))
	}
	if n := len(readStream(t, store, repo.StreamID(id))); n != 4 {
		t.Errorf("stream holds %d events, want only the other writer's 4", n)
	}
}

// The policy writes a snapshot each time the sequence crosses a multiple of
// SnapshotEvery, and hydration uses it.
func testSnapshotPolicy(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	repo, err := aggregate.New(store, tallyDef(t), aggregate.Options{SnapshotEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	id := newID()
	stream := repo.StreamID(id)
	for i := range 12 {
		if _, err := repo.Handle(ctx, id, add{ID: i + 1, N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	repo.Close()
	snap, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62)
	if err != nil || !ok || snap.Version != 9 {
		t.Fatalf("snapshot = version %d, %v, %v; want version 9 (sequence 10)", snap.Version, ok, err)
	}
	var s tally
	if err := json.Unmarshal(snap.Data, &s); err != nil || s.Count != 10 {
		t.Fatalf("snapshot state %+v, %v; want 10 additions", s, err)
	}
	if string(snap.Metadata) != `{"schema":0}` {
		t.Errorf("snapshot metadata %s", snap.Metadata)
	}
	// After Close the repository still handles commands.
	if _, err := repo.Handle(ctx, id, add{ID: 13, N: 1}); err != nil {
		t.Fatal(err)
	}
}

// A snapshot of the current schema is used; one of another schema is
// ignored and the state rebuilt from the events.
func testSnapshotSchema(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	id := newID()
	writer := newRepo(t, store, tallyDef(t), aggregate.Options{})
	for i := range 4 {
		if _, err := writer.Handle(ctx, id, add{ID: i + 1, N: 10}); err != nil {
			t.Fatal(err)
		}
	}
	stream := writer.StreamID(id)
	// A snapshot at version 2 whose state is recognisably not the
	// events': Sum 1000 where the events say 30.
	marked := cairn.Snapshot{StreamID: stream, Version: 2, Data: []byte(`{"Count":3,"Sum":1000,"Last":3}`), Metadata: []byte(`{"schema":1}`)}
	if err := store.CommitSnapshot(ctx, marked); err != nil {
		t.Fatal(err)
	}
	v2 := newRepo(t, store, tallyDef(t), aggregate.Options{SnapshotSchema: 2})
	if s, _, err := v2.Fetch(ctx, id); err != nil || s.Sum != 40 {
		t.Fatalf("Fetch with schema 2 over a schema 1 snapshot = %+v, %v; want the events' sum 40", s, err)
	}
	v1 := newRepo(t, store, tallyDef(t), aggregate.Options{SnapshotSchema: 1})
	if s, _, err := v1.Fetch(ctx, id); err != nil || s.Sum != 1010 {
		t.Fatalf("Fetch with schema 1 = %+v, %v; want the snapshot's 1000 plus 10", s, err)
	}
	// Replay before the snapshot does not use it.
	if s, err := v1.Replay(ctx, id, 1); err != nil || s.Sum != 20 {
		t.Fatalf("Replay(1) with schema 1 = %+v, %v; want 20", s, err)
	}
	// A snapshot of the right schema that does not decode is ignored too.
	garbled := cairn.Snapshot{StreamID: stream, Version: 3, Data: []byte(`{"Sum":"many"`), Metadata: []byte(`{"schema":1}`)}
	if err := store.CommitSnapshot(ctx, garbled); err != nil {
		t.Fatal(err)
	}
	fresh := newRepo(t, store, tallyDef(t), aggregate.Options{SnapshotSchema: 1})
	if s, v, err := fresh.Fetch(ctx, id); err != nil || s.Sum != 40 || v != 3 {
		t.Fatalf("Fetch over an undecodable snapshot = %+v, %d, %v; want the events' sum 40 at version 3", s, v, err)
	}
}

func TestNewRejectsBadDefinitions(t *testing.T) {
	store := openMemory(t)
	good := tallyDef(t)
	for name, mutate := range map[string]func(*aggregate.Definition[tally, add, tallyEvent]){
		"empty category":  func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Category = "" },
		"dash":            func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Category = "a-b" },
		"reserved":        func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Category = "$sys" },
		"nil decide":      func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Decide = nil },
		"nil evolve":      func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Evolve = nil },
		"nil codec":       func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Codec = nil },
		"nil projection":  func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Projections = []cairn.Projection{nil} },
		"control in name": func(d *aggregate.Definition[tally, add, tallyEvent]) { d.Category = "a\nb" },
	} {
		def := good
		mutate(&def)
		if _, err := aggregate.New(store, def, aggregate.Options{}); err == nil {
			t.Errorf("%s: New accepted the definition", name)
		}
	}
	if _, err := aggregate.New[tally](nil, good, aggregate.Options{}); err == nil {
		t.Error("New accepted a nil store")
	}
}

func TestInitialState(t *testing.T) {
	ctx := context.Background()
	def := tallyDef(t)
	def.Initial = func() tally { return tally{Sum: 100} }
	repo := newRepo(t, openMemory(t), def, aggregate.Options{})
	s, v, err := repo.Load(ctx, "fresh")
	if err != nil || s.Sum != 100 || v != -1 {
		t.Fatalf("Load of a new aggregate = %+v, %d, %v; want the initial state at version -1", s, v, err)
	}
	res, err := repo.Handle(ctx, "fresh", add{ID: 1, N: 1})
	if err != nil || res.State.Sum != 101 || res.Version != 0 {
		t.Fatalf("Handle = %+v, %v", res, err)
	}
	if _, err := repo.Snapshot(ctx, "never-written"); !errors.Is(err, cairn.ErrStreamNotFound) {
		t.Errorf("Snapshot of an aggregate without events: %v, want ErrStreamNotFound", err)
	}
}

// The cache is bounded and still correct when states are evicted.
func TestSmallCache(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t, openMemory(t), tallyDef(t), aggregate.Options{CacheSize: 2})
	for round := range 3 {
		for i := range 5 {
			id := strconv.Itoa(i)
			res, err := repo.Handle(ctx, id, add{ID: round, N: i})
			if err != nil {
				t.Fatal(err)
			}
			if want := (round + 1) * i; res.State.Sum != want {
				t.Fatalf("aggregate %s after round %d: sum %d, want %d", id, round, res.State.Sum, want)
			}
		}
	}
}

// A cancelled context ends the wait between attempts.
func TestHandleHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := openMemory(t)
	other := newRepo(t, store, tallyDef(t), aggregate.Options{})
	id := newID()
	def := tallyDef(t)
	def.Decide = func(s tally, c add) ([]tallyEvent, error) {
		// Make the commit conflict, then cancel: the next attempt is
		// never made.
		if _, err := other.Handle(context.Background(), id, add{ID: 9, N: 1}); err != nil {
			return nil, err
		}
		cancel()
		return decideTally(s, c)
	}
	repo := newRepo(t, store, def, aggregate.Options{BackoffBase: time.Hour, BackoffMax: time.Hour})
	_, err := repo.Handle(ctx, id, add{ID: 1, N: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Handle with a cancelled context: %v, want context.Canceled", err)
	}
}

// Projections need an engine that commits them with the events.
func TestProjectionsNeedTxCommitter(t *testing.T) {
	store := cairn.NewStore(appendOnly{memstore.New()}, cairn.Options{})
	defer store.Close()
	noop := func(context.Context, cairn.Tx, []cairn.Event) error { return nil }
	if _, err := aggregate.New(store, tallyDef(t, noop), aggregate.Options{}); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("New with projections on an engine without CommitAll: %v, want ErrNotSupported", err)
	}
	// Without projections or snapshots, the required contract is enough.
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{SnapshotEvery: 1})
	ctx := context.Background()
	for i := range 3 {
		if _, err := repo.Handle(ctx, "x", add{ID: i, N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if s, v, err := repo.Fetch(ctx, "x"); err != nil || s.Sum != 3 || v != 2 {
		t.Fatalf("Fetch = %+v, %d, %v", s, v, err)
	}
}

// appendOnly hides every optional capability of an engine.
type appendOnly struct{ cairn.Backend }

// Only the commit's conflicts are retried: a domain error is returned at
// once, whatever it wraps.
func TestDomainErrorIsNotRetried(t *testing.T) {
	decisions := 0
	def := tallyDef(t)
	def.Decide = func(tally, add) ([]tallyEvent, error) {
		decisions++
		return nil, fmt.Errorf("refused: %w", cairn.ErrWrongExpectedVersion)
	}
	repo := newRepo(t, openMemory(t), def, aggregate.Options{})
	if _, err := repo.Handle(context.Background(), "x", add{}); err == nil || decisions != 1 {
		t.Fatalf("Handle = %v after %d decisions; want the domain error after 1", err, decisions)
	}
}

// A cached state ahead of its stream (the database was restored from an
// older backup, say) is dropped after the conflict it causes, instead of
// being retried until the attempts run out.
func TestCacheAheadOfStreamIsDropped(t *testing.T) {
	ctx := context.Background()
	engine := &swappable{Backend: memstore.New()}
	store := cairn.NewStore(engine, cairn.Options{})
	defer store.Close()
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{MaxAttempts: 3})
	for i := range 3 {
		if _, err := repo.Handle(ctx, "x", add{ID: i, N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	engine.Backend = memstore.New() // the cache is at version 2, the store empty
	res, err := repo.Handle(ctx, "x", add{ID: 9, N: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 0 || res.State.Sum != 5 {
		t.Errorf("Handle on the emptied store = %+v, want sum 5 at version 0", res)
	}
}

// swappable lets a test replace the engine under a Store. Tests swap it
// only while no other goroutine uses the Store.
type swappable struct{ cairn.Backend }
