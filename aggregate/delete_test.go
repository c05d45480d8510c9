package aggregate_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
	"github.com/cairndb/cairn/memstore"
)

// firstTry are options under which a commit with the wrong expected version
// fails Handle instead of being decided again.
var firstTry = aggregate.Options{MaxAttempts: 1}

// checkAggregate checks that every repository reports the state want at
// version through Fetch and Load, and that Replay of version gives it too.
func checkAggregate(t *testing.T, id string, want tally, version int64, repos ...*aggregate.Repository[tally, add, tallyEvent]) {
	t.Helper()
	ctx := context.Background()
	for n, repo := range repos {
		if s, v, err := repo.Fetch(ctx, id); err != nil || s != want || v != version {
			t.Errorf("repository %d: Fetch = %+v, %d, %v; want %+v at version %d", n, s, v, err, want, version)
		}
		if s, v, err := repo.Load(ctx, id); err != nil || s != want || v != version {
			t.Errorf("repository %d: Load = %+v, %d, %v; want %+v at version %d", n, s, v, err, want, version)
		}
		if version < 0 {
			continue
		}
		if s, err := repo.Replay(ctx, id, version); err != nil || s != want {
			t.Errorf("repository %d: Replay(%d) = %+v, %v; want %+v", n, version, s, err, want)
		}
	}
}

func testDeleteAndRecreate(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	deleteAndRecreate(t, store, false)
}

func testDeleteAndRecreateWithSnapshot(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	deleteAndRecreate(t, store, true)
}

// An aggregate whose stream was deleted is a new aggregate: its commands are
// decided on the initial state, the first commit expects no stream, and its
// history is the events after the deletion, whose versions continue the
// deleted ones.
func deleteAndRecreate(t *testing.T, store *cairn.Store, withSnapshot bool) {
	ctx := context.Background()
	repo := newRepo(t, store, tallyDef(t), firstTry)
	other := newRepo(t, store, tallyDef(t), firstTry)
	id := newID()
	stream := repo.StreamID(id)
	for i := range 3 {
		if _, err := repo.Handle(ctx, id, add{ID: i + 1, N: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if withSnapshot {
		if v, err := repo.Snapshot(ctx, id); err != nil || v != 2 {
			t.Fatalf("Snapshot = %d, %v; want 2", v, err)
		}
	}
	if err := store.DeleteStream(ctx, stream, cairn.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62); err != nil || ok {
		t.Fatalf("GetSnapshot after the deletion = %v, %v; want no snapshot", ok, err)
	}
	if withSnapshot {
		// A snapshot written after the deletion by a writer that read the
		// stream before it is not the aggregate's state either.
		late := cairn.Snapshot{StreamID: stream, Version: 1, Data: []byte(`{"Count":2,"Sum":20,"Last":2}`), Metadata: []byte(`{"schema":0}`)}
		if err := store.CommitSnapshot(ctx, late); err != nil {
			t.Fatal(err)
		}
	}
	checkAggregate(t, id, tally{}, -1, repo, newRepo(t, store, tallyDef(t), firstTry))

	// Over the limit of 15 on the deleted state (sum 30), not on the new
	// one. With MaxAttempts 1, a commit expecting anything but no stream
	// would fail.
	res, err := repo.Handle(ctx, id, add{ID: 4, N: 1, Limit: 15})
	if err != nil {
		t.Fatalf("first command after the deletion: %v", err)
	}
	if want := (tally{Count: 1, Sum: 1, Last: 4}); res.Version != 3 || res.State != want {
		t.Fatalf("first command after the deletion = state %+v at version %d; want %+v at version 3", res.State, res.Version, want)
	}
	// Another repository, with nothing cached, expects version 3.
	if res, err = other.Handle(ctx, id, add{ID: 5, N: 2, Limit: 15}); err != nil || res.Version != 4 || res.State.Sum != 3 {
		t.Fatalf("command on another repository = %+v, %v; want sum 3 at version 4", res, err)
	}
	// The first repository's cached state at version 3 is brought up to
	// date, and it expects version 4.
	if res, err = repo.Handle(ctx, id, add{ID: 6, N: 3, Limit: 15}); err != nil || res.Version != 5 || res.State.Sum != 6 {
		t.Fatalf("command on the first repository = %+v, %v; want sum 6 at version 5", res, err)
	}

	events := readStream(t, store, stream)
	if len(events) != 3 || events[0].Version != 3 {
		t.Fatalf("the stream holds %d events from version %d; want 3 from version 3", len(events), events[0].Version)
	}
	want := tally{Count: 3, Sum: 6, Last: 6}
	if got := fold(t, tallyCodec(t), events); got != want {
		t.Fatalf("the recreated stream's events fold to %+v, want %+v", got, want)
	}
	fresh := newRepo(t, store, tallyDef(t), firstTry)
	checkAggregate(t, id, want, 5, repo, other, fresh)
	if s, err := fresh.Replay(ctx, id, 3); err != nil || s != (tally{Count: 1, Sum: 1, Last: 4}) {
		t.Errorf("Replay(3) = %+v, %v; want the first new event only", s, err)
	}
	for _, v := range []int64{0, 2} {
		if _, err := fresh.Replay(ctx, id, v); !errors.Is(err, aggregate.ErrVersionNotFound) {
			t.Errorf("Replay(%d) of a deleted version: %v, want ErrVersionNotFound", v, err)
		}
	}

	if withSnapshot {
		// A snapshot of the recreated aggregate is used.
		if v, err := repo.Snapshot(ctx, id); err != nil || v != 5 {
			t.Fatalf("Snapshot of the recreated aggregate = %d, %v; want 5", v, err)
		}
		checkAggregate(t, id, want, 5, newRepo(t, store, tallyDef(t), firstTry))
		if snap, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62); err != nil || !ok || string(snap.Metadata) != `{"schema":0,"origin":3}` {
			t.Errorf("snapshot of the recreated aggregate: metadata %s, %v, %v; want its history's origin 3", snap.Metadata, ok, err)
		}
		if s, err := fresh.Replay(ctx, id, 4); err != nil || s != (tally{Count: 2, Sum: 3, Last: 5}) {
			t.Errorf("Replay(4) before the new snapshot = %+v, %v", s, err)
		}
	}
}

// A repository that has the aggregate cached notices that another node
// deleted its stream, and that the stream was recreated.
func testCacheSeesDeletion(t *testing.T, store *cairn.Store, peer func() *cairn.Store) {
	ctx := context.Background()
	a := newRepo(t, store, tallyDef(t), firstTry)
	other := peer()
	b := newRepo(t, other, tallyDef(t), firstTry)
	id := newID()
	stream := a.StreamID(id)
	for i := range 2 {
		if _, err := a.Handle(ctx, id, add{ID: i + 1, N: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.DeleteStream(ctx, stream, cairn.Exact(1)); err != nil {
		t.Fatal(err)
	}
	checkAggregate(t, id, tally{}, -1, a)
	res, err := a.Handle(ctx, id, add{ID: 3, N: 1})
	if err != nil || res.Version != 2 || res.State != (tally{Count: 1, Sum: 1, Last: 3}) {
		t.Fatalf("Handle after the deletion = %+v, %v; want sum 1 at version 2", res, err)
	}

	// a has the recreated aggregate cached at version 2. b deletes it and
	// recreates it again: a must not fold the newest events into its
	// cached state (sum 1 + 5, over the limit of 6 after the next 1).
	if err := other.DeleteStream(ctx, stream, cairn.Exact(2)); err != nil {
		t.Fatal(err)
	}
	if res, err := b.Handle(ctx, id, add{ID: 4, N: 5}); err != nil || res.Version != 3 {
		t.Fatalf("Handle on b = %+v, %v; want version 3", res, err)
	}
	res, err = a.Handle(ctx, id, add{ID: 5, N: 1, Limit: 6})
	if err != nil || res.Version != 4 || res.State != (tally{Count: 2, Sum: 6, Last: 5}) {
		t.Fatalf("Handle on a after b recreated the aggregate = %+v, %v; want sum 6 at version 4", res, err)
	}
	checkAggregate(t, id, tally{Count: 2, Sum: 6, Last: 5}, 4, a, b)
}

// Truncation follows the rule of deletion: the readable events are the
// aggregate's history. A snapshot that the readable events continue keeps
// the history before them; without one, the aggregate starts again from
// the first readable event.
func testTruncation(t *testing.T, store *cairn.Store, _ func() *cairn.Store) {
	ctx := context.Background()
	if _, ok := store.Backend().(cairn.Truncater); !ok {
		t.Skip("the engine does not truncate")
	}
	repo := newRepo(t, store, tallyDef(t), firstTry)
	run := func(id string, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			if _, err := repo.Handle(ctx, id, add{ID: i, N: i}); err != nil {
				t.Fatal(err)
			}
		}
	}
	truncate := func(id string, before int64) {
		t.Helper()
		if err := store.TruncateStream(ctx, repo.StreamID(id), before); err != nil {
			t.Fatal(err)
		}
	}
	fresh := func() *aggregate.Repository[tally, add, tallyEvent] {
		return newRepo(t, store, tallyDef(t), firstTry)
	}

	// No snapshot: the events 3 and 4 (additions 4 and 5) remain. repo has
	// the aggregate cached with all five.
	plain := newID()
	run(plain, 1, 5)
	truncate(plain, 3)
	checkAggregate(t, plain, tally{Count: 2, Sum: 9, Last: 5}, 4, repo, fresh())
	if res, err := repo.Handle(ctx, plain, add{ID: 6, N: 6}); err != nil || res.Version != 5 || res.State.Sum != 15 {
		t.Fatalf("Handle after the truncation = %+v, %v; want sum 15 at version 5", res, err)
	}

	// A snapshot at 4, the stream truncated before 3, then before 5: the
	// snapshot continues into the readable events, and the history is
	// whole. The versions before the snapshot cannot be replayed any more.
	covered := newID()
	run(covered, 1, 5)
	if _, err := repo.Snapshot(ctx, covered); err != nil {
		t.Fatal(err)
	}
	run(covered, 6, 6)
	for _, before := range []int64{3, 5} {
		truncate(covered, before)
		checkAggregate(t, covered, tally{Count: 6, Sum: 21, Last: 6}, 5, repo, fresh())
		if _, err := fresh().Replay(ctx, covered, 3); !errors.Is(err, aggregate.ErrVersionNotFound) {
			t.Errorf("truncated before %d: Replay(3) behind the snapshot: %v, want ErrVersionNotFound", before, err)
		}
	}

	// A snapshot at 4, the stream truncated past it, before 6: only the
	// event 6 (addition 7) remains.
	past := newID()
	run(past, 1, 5)
	if _, err := repo.Snapshot(ctx, past); err != nil {
		t.Fatal(err)
	}
	run(past, 6, 7)
	truncate(past, 6)
	checkAggregate(t, past, tally{Count: 1, Sum: 7, Last: 7}, 6, repo, fresh())
	if _, err := fresh().Replay(ctx, past, 5); !errors.Is(err, aggregate.ErrVersionNotFound) {
		t.Errorf("Replay(5) of a truncated version: %v, want ErrVersionNotFound", err)
	}
}

// A policy snapshot whose stream is deleted between the commit that
// scheduled it and its writing is not written: it would outlive the
// deletion that removed the stream's snapshot.
func TestPolicySnapshotAfterDeletion(t *testing.T) {
	ctx := context.Background()
	engine := &gatedReads{Store: memstore.New(), reached: make(chan struct{}), release: make(chan struct{})}
	store := cairn.NewStore(engine, cairn.Options{})
	defer store.Close()
	repo := newRepo(t, store, tallyDef(t), aggregate.Options{SnapshotEvery: 2})
	release := sync.OnceFunc(func() { close(engine.release) })
	t.Cleanup(release) // before repo.Close, should the test stop early
	id := newID()
	stream := repo.StreamID(id)
	for i := range 2 {
		if _, err := repo.Handle(ctx, id, add{ID: i + 1, N: 1}); err != nil {
			t.Fatal(err)
		}
	}
	<-engine.reached // the snapshot at version 1 is about to be checked or written
	if err := store.DeleteStream(ctx, stream, cairn.Exact(1)); err != nil {
		t.Fatal(err)
	}
	release()
	repo.Close()
	if snap, ok, err := store.GetSnapshot(ctx, stream, -1, 1<<62); err != nil || ok {
		t.Fatalf("GetSnapshot = version %d, %v, %v; want no snapshot of the deleted stream", snap.Version, ok, err)
	}
}

// gatedReads holds the policy snapshot writer until release is closed: at
// its first one-event read of a stream from a version above 0 (its check
// of the stream) or its first snapshot commit, whichever comes first.
type gatedReads struct {
	*memstore.Store
	reached, release chan struct{}
	once             sync.Once
}

func (g *gatedReads) hold() {
	g.once.Do(func() {
		close(g.reached)
		<-g.release
	})
}

func (g *gatedReads) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	if count == 1 && from > 0 {
		g.hold()
	}
	return g.Store.ReadStream(ctx, stream, from, count, dir)
}

func (g *gatedReads) CommitSnapshot(ctx context.Context, snap cairn.Snapshot) error {
	g.hold()
	return g.Store.CommitSnapshot(ctx, snap)
}
