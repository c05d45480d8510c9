package diskstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// mark encodes a log sequence as a group's mark.
func mark(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func applyWait(t *testing.T, db *diskstore.DB, g *diskstore.Group) diskstore.Applied {
	t.Helper()
	a, err := db.Apply(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func aev(typ string) cairn.EventData {
	return cairn.EventData{ID: uuid.New(), Type: typ, Data: []byte(typ)}
}

// randomGroups returns groups of random writes to a few streams, some of
// which fail their checks, some of which repeat earlier appends.
func randomGroups(seed uint64, n int) []*diskstore.Group {
	rng := rand.New(rand.NewPCG(seed, 1))
	var groups []*diskstore.Group
	var appended []cairn.AppendRequest
	at := time.Date(2030, 1, 2, 3, 4, 5, 6789, time.UTC)
	for seq := range n {
		g := &diskstore.Group{Mark: mark(uint64(seq + 1)), Time: at.Add(time.Duration(seq) * time.Millisecond)}
		for range 1 + rng.IntN(4) {
			stream := fmt.Sprintf("s-%d", rng.IntN(4))
			var w diskstore.Write
			switch k := rng.IntN(10); {
			case k < 4:
				exp := cairn.Any
				if rng.IntN(2) == 0 {
					exp = cairn.Exact(int64(rng.IntN(6)))
				}
				req := cairn.AppendRequest{Stream: stream, Expected: exp, Events: []cairn.EventData{aev("a"), aev("b")}}
				appended = append(appended, req)
				w = &diskstore.AppendWrite{Requests: []cairn.AppendRequest{req}}
			case k < 5 && len(appended) > 0:
				w = &diskstore.AppendWrite{Requests: []cairn.AppendRequest{appended[rng.IntN(len(appended))]}}
			case k < 6:
				w = &diskstore.AppendWrite{Requests: []cairn.AppendRequest{
					{Stream: stream, Expected: cairn.Any, Events: []cairn.EventData{aev("c")}},
					{Stream: "t-batch", Expected: cairn.Exact(int64(rng.IntN(3))), Events: []cairn.EventData{aev("d")}},
				}}
			case k < 7:
				w = &diskstore.DeleteWrite{Stream: stream, Expected: cairn.Any, Tombstone: rng.IntN(8) == 0}
			case k < 8:
				w = &diskstore.TruncateWrite{Stream: stream, Before: int64(rng.IntN(5))}
			default:
				w = &diskstore.SnapshotWrite{Snapshot: cairn.Snapshot{StreamID: stream, Version: int64(rng.IntN(5)), Data: []byte("snap")}}
			}
			g.Writes = append(g.Writes, w)
		}
		groups = append(groups, g)
	}
	return groups
}

func readAll(t *testing.T, db *diskstore.DB) []cairn.Event {
	t.Helper()
	evs, err := db.ReadAll(context.Background(), 0, 1<<20, cairn.Forward)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func outcomeText(a diskstore.Applied) string {
	s := fmt.Sprintf("next %d:", a.Next)
	for _, o := range a.Outcomes {
		s += fmt.Sprintf(" %v/%v", o.Results, o.Err)
	}
	return s
}

// Two copies that apply the same groups in the same order decide the same
// outcomes and hold the same events, at the same positions and versions,
// with the groups' commit times, whatever the clock and however the
// groups reach the committer (one at a time, or many in flight).
func TestApplyIsDeterministic(t *testing.T) {
	groups := randomGroups(7, 200)
	open := func() *diskstore.DB {
		db, err := diskstore.Open(t.TempDir(), diskstore.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	a, b := open(), open()
	var outA []string
	for _, g := range groups {
		outA = append(outA, outcomeText(applyWait(t, a, g)))
	}
	// b: every group in flight at once.
	var pending []*diskstore.Applying
	for _, g := range groups {
		p, err := b.Apply(context.Background(), g)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	for i, p := range pending {
		res, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := outcomeText(res); got != outA[i] {
			t.Fatalf("group %d: outcome %s on one copy, %s on the other", i+1, outA[i], got)
		}
	}
	ea, eb := readAll(t, a), readAll(t, b)
	if len(ea) == 0 {
		t.Fatal("no event applied")
	}
	if !slices.EqualFunc(ea, eb, eventsEqual) {
		t.Fatalf("the copies differ: %d and %d events", len(ea), len(eb))
	}
	for _, e := range ea {
		if e.Created.Year() != 2030 {
			t.Fatalf("event %d recorded at %v, not at its group's time", e.Position, e.Created)
		}
	}
	for _, db := range []*diskstore.DB{a, b} {
		m, ok, err := db.Mark(context.Background())
		if err != nil || !ok || binary.BigEndian.Uint64(m) != uint64(len(groups)) {
			t.Fatalf("mark %x, %v, %v; want the last group's", m, ok, err)
		}
	}
}

func eventsEqual(x, y cairn.Event) bool {
	return x.ID == y.ID && x.StreamID == y.StreamID && x.Version == y.Version && x.Position == y.Position &&
		x.Created.Equal(y.Created) && x.Type == y.Type && string(x.Data) == string(y.Data)
}

// An applied group's writes are checked as the write API checks them:
// expected versions, retries by event ID (a repeat returns the first
// result), tombstones; each write's outcome is its own.
func TestApplyOutcomes(t *testing.T) {
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := cairn.AppendRequest{Stream: "a-1", Expected: cairn.NoStream, Events: []cairn.EventData{aev("x"), aev("y")}}
	res := applyWait(t, db, &diskstore.Group{Mark: mark(1), Time: time.Now(), Writes: []diskstore.Write{
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{first}},
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "a-1", Expected: cairn.NoStream, Events: []cairn.EventData{aev("z")}}}},
		&diskstore.DeleteWrite{Stream: "gone", Expected: cairn.Any, Tombstone: true},
	}})
	o := res.Outcomes
	if o[0].Err != nil || o[0].Results[0] != (cairn.AppendResult{Version: 1, Position: 1}) {
		t.Fatalf("first append: %+v", o[0])
	}
	if !errors.Is(o[1].Err, cairn.ErrWrongExpectedVersion) {
		t.Fatalf("second append to a stream that exists: %v, want a wrong expected version", o[1].Err)
	}
	// The tombstone's record (cairn.DeletionsStream) takes position 2.
	if o[2].Err != nil || res.Next != 3 {
		t.Fatalf("tombstone: %v; next %d, want 3", o[2].Err, res.Next)
	}
	res = applyWait(t, db, &diskstore.Group{Mark: mark(2), Time: time.Now(), Writes: []diskstore.Write{
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{first}},
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "gone", Expected: cairn.Any, Events: []cairn.EventData{aev("z")}}}},
	}})
	o = res.Outcomes
	if o[0].Err != nil || o[0].Results[0] != (cairn.AppendResult{Version: 1, Position: 1}) {
		t.Fatalf("repeated append: %+v, want the first result", o[0])
	}
	if !errors.Is(o[1].Err, cairn.ErrStreamDeleted) {
		t.Fatalf("append to a tombstoned stream: %v", o[1].Err)
	}
	if n := len(readAll(t, db)); n != 3 {
		t.Fatalf("%d events, want 3 (two appended, the tombstone's record)", n)
	}
}

// A commit planned with PlanCommit applies the projections' writes with
// its events, when nothing came between; otherwise it fails with
// ErrPlanStale and writes nothing.
// An append of one request marked Batch is a batch of one, as
// AppendBatch has it: a failing condition comes as a *cairn.BatchError
// naming the request, as on one machine; unmarked, as Append's error.
func TestApplyBatchOfOne(t *testing.T) {
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tagged := aev("x")
	tagged.Tags = []string{"t"}
	failing := &cairn.AppendCondition{FailIfEventsMatch: cairn.Query{Items: []cairn.QueryItem{{Tags: []string{"t"}}}}}
	res := applyWait(t, db, &diskstore.Group{Mark: mark(1), Time: time.Now(), Writes: []diskstore.Write{
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "a", Expected: cairn.NoStream, Events: []cairn.EventData{tagged}}}},
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "b", Expected: cairn.Any, Events: []cairn.EventData{aev("y")}, Condition: failing}}, Batch: true},
		&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "c", Expected: cairn.Any, Events: []cairn.EventData{aev("z")}, Condition: failing}}},
	}})
	var be *cairn.BatchError
	if o := res.Outcomes[1]; !errors.As(o.Err, &be) || len(be.Errs) != 1 || !errors.Is(be.Errs[0], cairn.ErrConditionFailed) {
		t.Fatalf("a batch of one whose condition fails: %v, want a *BatchError of one ErrConditionFailed", o.Err)
	}
	if o := res.Outcomes[2]; !errors.Is(o.Err, cairn.ErrConditionFailed) || errors.As(o.Err, &be) {
		t.Fatalf("an append whose condition fails: %v, want ErrConditionFailed alone", o.Err)
	}
	if n := len(readAll(t, db)); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

func TestApplyPlannedCommit(t *testing.T) {
	db, err := diskstore.Open(t.TempDir(), diskstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	count := func(ctx context.Context, tx cairn.Tx, events []cairn.Event) error {
		v, _, err := tx.Get(ctx, "counts", "n")
		if err != nil {
			return err
		}
		return tx.Put(ctx, "counts", "n", fmt.Appendf(nil, "%s+%d@%d", v, len(events), events[0].Position))
	}
	req := cairn.AppendRequest{Stream: "c-1", Expected: cairn.NoStream, Events: []cairn.EventData{aev("x")}}
	p, err := db.PlanCommit(ctx, time.Now(), req, []cairn.Projection{count})
	if err != nil || p.Repeat != nil {
		t.Fatal(p, err)
	}
	if p.Plan.Position != 0 || p.Plan.Version != 0 || len(p.Plan.Writes) != 1 {
		t.Fatalf("plan %+v", p.Plan)
	}
	if _, ok, _ := db.ReadModelGet(ctx, "counts", "n"); ok {
		t.Fatal("a plan wrote its projection's write")
	}
	// Another append comes first: the plan is stale.
	other := &diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "o-1", Expected: cairn.Any, Events: []cairn.EventData{aev("o")}}}}
	res := applyWait(t, db, &diskstore.Group{Mark: mark(1), Time: time.Now(), Writes: []diskstore.Write{other, &diskstore.CommitWrite{Request: req, Plan: p.Plan}}})
	if !errors.Is(res.Outcomes[1].Err, diskstore.ErrPlanStale) {
		t.Fatalf("stale plan: %v", res.Outcomes[1].Err)
	}
	if _, ok, _ := db.ReadModelGet(ctx, "counts", "n"); ok {
		t.Fatal("a stale plan wrote its projection's write")
	}
	p, err = db.PlanCommit(ctx, time.Now(), req, []cairn.Projection{count})
	if err != nil {
		t.Fatal(err)
	}
	res = applyWait(t, db, &diskstore.Group{Mark: mark(2), Time: time.Now(), Writes: []diskstore.Write{&diskstore.CommitWrite{Request: req, Plan: p.Plan}}})
	if res.Outcomes[0].Err != nil || res.Outcomes[0].Results[0].Position != 1 {
		t.Fatalf("fresh plan: %+v", res.Outcomes[0])
	}
	v, ok, err := db.ReadModelGet(ctx, "counts", "n")
	if err != nil || !ok || string(v) != "+1@1" {
		t.Fatalf("read model %q %v %v", v, ok, err)
	}
	// Planning a repeat of the commit returns its result.
	p, err = db.PlanCommit(ctx, time.Now(), req, []cairn.Projection{count})
	if err != nil || p.Repeat == nil || p.Repeat.Position != 1 {
		t.Fatalf("plan of a repeat: %+v %v", p, err)
	}
}

// The mark is written in the same frame as its group: after a crash that
// keeps any part of what was not synced, the store holds exactly the
// groups up to the one its mark names, each whole.
func TestApplyMarkSurvivesCrashWithItsGroup(t *testing.T) {
	for round, unsynced := range []int{0, 30, 70, 100} {
		t.Run(fmt.Sprintf("unsynced%d", unsynced), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := diskstore.Options{FS: unlinked(fs), SegmentBytes: 16 << 10, MemTableBytes: 64 << 10}
			db, err := diskstore.Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			// Each group appends seq events to its own stream, and one
			// to a shared one: a group kept in part would show.
			var pending []*diskstore.Applying
			for seq := uint64(1); seq <= 300; seq++ {
				evs := make([]cairn.EventData, 1+seq%3)
				for i := range evs {
					evs[i] = aev("e")
				}
				exp := cairn.NoStream
				if seq > 1 {
					exp = cairn.Exact(int64(seq) - 2)
				}
				g := &diskstore.Group{Mark: mark(seq), Time: time.Now(), Writes: []diskstore.Write{
					&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: fmt.Sprintf("g-%d", seq), Expected: cairn.NoStream, Events: evs}}},
					&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "all", Expected: exp, Events: []cairn.EventData{aev("n")}}}},
				}}
				p, err := db.Apply(context.Background(), g)
				if err != nil {
					t.Fatal(err)
				}
				pending = append(pending, p)
				if seq == 150 {
					if _, err := pending[len(pending)-1].Wait(); err != nil {
						t.Fatal(err)
					}
				}
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(round), 3))})
			for _, p := range pending {
				if _, err := p.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			_ = db.Close()
			opts.FS = unlinked(crashed)
			db, err = diskstore.Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m, ok, err := db.Mark(context.Background())
			if err != nil || !ok {
				t.Fatalf("mark: %v %v", ok, err)
			}
			last := binary.BigEndian.Uint64(m)
			if last < 150 {
				t.Fatalf("mark %d after a crash, below the group acknowledged (150)", last)
			}
			ctx := context.Background()
			v, err := db.StreamVersion(ctx, "all")
			if err != nil || v != int64(last)-1 {
				t.Fatalf("stream all at version %d (%v), want %d: the mark and the groups disagree", v, err, last-1)
			}
			for seq := uint64(1); seq <= 300; seq++ {
				v, err := db.StreamVersion(ctx, fmt.Sprintf("g-%d", seq))
				switch {
				case seq <= last && (err != nil || v != int64(seq%3)):
					t.Fatalf("group %d (mark %d): version %d, %v", seq, last, v, err)
				case seq > last && !errors.Is(err, cairn.ErrStreamNotFound):
					t.Fatalf("group %d after the mark %d is there: %d, %v", seq, last, v, err)
				}
			}
		})
	}
}

// TestVisibleBeforeSyncCrash crashes a store whose applied groups are
// visible before they are durable (Options.VisibleBeforeSync), with a sync
// interval so long that the log is synced only when the store must have
// it durable (its index flushed, often, with a small memtable, and its log
// moving to new segments, with small ones). After the crash, keeping any
// part of what was not synced, the store must open, and its mark name a
// group that it holds whole with every group before it, events readable
// from the log; no later group; and at least every group whose Wait
// returned. An index flushed while the groups it holds are not durable
// would point past the log's end after the crash.
func TestVisibleBeforeSyncCrash(t *testing.T) {
	for round, unsynced := range []int{0, 30, 70, 100, 0} {
		t.Run(fmt.Sprintf("unsynced%d", unsynced), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			opts := diskstore.Options{FS: unlinked(fs), SegmentBytes: 16 << 10, MemTableBytes: 64 << 10,
				VisibleBeforeSync: true, SyncInterval: time.Hour}
			db, err := diskstore.Open("db", opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var durable atomic.Uint64 // the highest group whose Wait returned
			var waits sync.WaitGroup
			const groups = 400
			for seq := uint64(1); seq <= groups; seq++ {
				evs := make([]cairn.EventData, 1+seq%3)
				for i := range evs {
					evs[i] = aev("e")
				}
				exp := cairn.NoStream
				if seq > 1 {
					exp = cairn.Exact(int64(seq) - 2)
				}
				g := &diskstore.Group{Mark: mark(seq), Time: time.Now(), Writes: []diskstore.Write{
					&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: fmt.Sprintf("g-%d", seq), Expected: cairn.NoStream, Events: evs}}},
					&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "all", Expected: exp, Events: []cairn.EventData{aev("n")}}}},
				}}
				a, err := db.Apply(ctx, g)
				if err != nil {
					t.Fatal(err)
				}
				res, err := a.Applied()
				if err != nil {
					t.Fatal(err)
				}
				for i, o := range res.Outcomes {
					if o.Err != nil {
						t.Fatalf("group %d, write %d: %v", seq, i, o.Err)
					}
				}
				// Visible at once, durable or not.
				if v, err := db.StreamVersion(ctx, "all"); err != nil || v != int64(seq)-1 {
					t.Fatalf("after group %d was applied, stream all at version %d (%v)", seq, v, err)
				}
				waits.Go(func() {
					if _, err := a.Wait(); err == nil {
						for cur := durable.Load(); cur < seq && !durable.CompareAndSwap(cur, seq); cur = durable.Load() {
						}
					}
				})
			}
			acked := durable.Load()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(round), 5))})
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			waits.Wait()
			if durable.Load() != groups {
				t.Fatalf("after Close, groups up to %d durable, want %d", durable.Load(), groups)
			}
			opts.FS = unlinked(crashed)
			db, err = diskstore.Open("db", opts)
			if err != nil {
				t.Fatalf("open after the crash: %v", err)
			}
			defer db.Close()
			last := uint64(0)
			if m, ok, err := db.Mark(ctx); err != nil {
				t.Fatal(err)
			} else if ok {
				last = binary.BigEndian.Uint64(m)
			}
			if last < acked {
				t.Fatalf("mark %d after the crash, below group %d, durable before it", last, acked)
			}
			if last < groups && unsynced == 100 {
				t.Fatalf("mark %d after a crash that kept every write, want %d", last, groups)
			}
			all, err := db.ReadAll(ctx, 0, 1<<20, cairn.Forward)
			if err != nil {
				t.Fatalf("reading the log after the crash (mark %d): %v", last, err)
			}
			n := len(all)
			want := 0
			for seq := uint64(1); seq <= last; seq++ {
				want += 2 + int(seq%3)
			}
			if n != want {
				t.Fatalf("%d events after the crash, want %d for groups up to the mark %d", n, want, last)
			}
			for seq := uint64(1); seq <= groups; seq++ {
				v, err := db.StreamVersion(ctx, fmt.Sprintf("g-%d", seq))
				switch {
				case seq <= last && (err != nil || v != int64(seq%3)):
					t.Fatalf("group %d (mark %d): version %d, %v", seq, last, v, err)
				case seq > last && !errors.Is(err, cairn.ErrStreamNotFound):
					t.Fatalf("group %d after the mark %d is there: %d, %v", seq, last, v, err)
				}
			}
			// The store goes on from its mark.
			a, err := db.Apply(ctx, &diskstore.Group{Mark: mark(last + 1), Time: time.Now(), Writes: []diskstore.Write{
				&diskstore.AppendWrite{Requests: []cairn.AppendRequest{{Stream: "all", Expected: cairn.Exact(int64(last) - 1), Events: []cairn.EventData{aev("n")}}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := a.Applied(); err != nil || res.Outcomes[0].Err != nil {
				t.Fatalf("a group after the mark: %v %+v", err, res)
			}
		})
	}
}
