package diskstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/memstore"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// TestModel runs random sequences of writes, deletes, truncations,
// tombstones, compactions and reopens against the engine and against the
// memory engine, which serves as the model: after every step both must
// answer the same, event for event (data, ids, positions, versions) and
// error for error. The memory engine's Compact removes nothing, so the test
// notes which events were dead (no longer readable through their stream)
// at each compaction: those, and only those, must be gone from the engine's
// log. Small segments make the log span many files, so that compaction
// removes some of them and punches holes in others.
//
// In the crash variant the store lives on a filesystem that keeps only what
// was synced, and instead of being closed and reopened it crashes: a clone
// of the filesystem, keeping a random part of what was not synced, is
// opened. Every step was acknowledged before the crash, so nothing may be
// lost: Open must replay what the index had not made durable, deletes,
// truncations and compactions included.
func TestModel(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { testModel(t, seed, false) })
		t.Run(fmt.Sprintf("crash-seed%d", seed), func(t *testing.T) { testModel(t, seed, true) })
	}
}

func testModel(t *testing.T, seed uint64, crash bool) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	dir := t.TempDir()
	opts := diskstore.Options{NoSync: true, SegmentBytes: 16 << 10}
	var fs *vfs.MemFS
	if crash {
		fs = vfs.NewCrashableMem()
		dir, opts.FS, opts.NoSync = "db", fs, false
	}
	open := func() *cairn.Store {
		db, err := diskstore.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return cairn.NewStore(db, cairn.Options{ReadBatch: 50})
	}
	disk := open()
	defer func() { _ = disk.Close() }()
	model := cairn.NewStore(memstore.New(), cairn.Options{ReadBatch: 50})
	defer model.Close()

	streams := []string{"a", "b", "c", "d", "e", "f"}
	compacted := map[uint64]bool{} // positions compaction removed
	events := func() []cairn.EventData {
		out := make([]cairn.EventData, 1+rng.IntN(30))
		for i := range out {
			data := make([]byte, rng.IntN(400))
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			out[i] = cairn.EventData{ID: uuid.New(), Type: fmt.Sprint("T", rng.IntN(3)), ContentType: cairn.ContentBinary, Data: data}
			if rng.IntN(4) == 0 {
				out[i].Metadata = []byte(`{"m":1}`)
			}
		}
		return out
	}
	same := func(step int, what string, errD, errM error) {
		t.Helper()
		if (errD == nil) != (errM == nil) || (errD != nil && !sameKind(errD, errM)) {
			t.Fatalf("step %d, %s: engine %v, model %v", step, what, errD, errM)
		}
	}
	for step := range 150 {
		s := streams[rng.IntN(len(streams))]
		op := rng.IntN(20)
		if testing.Verbose() {
			t.Logf("step %d: op %d on %s", step, op, s)
		}
		switch {
		case op < 10:
			ev := events()
			_, errD := disk.Append(ctx, s, cairn.Any, ev...)
			_, errM := model.Append(ctx, s, cairn.Any, ev...)
			same(step, "append to "+s, errD, errM)
		case op < 12:
			var reqs []cairn.AppendRequest
			for _, id := range rng.Perm(len(streams))[:2+rng.IntN(3)] {
				reqs = append(reqs, cairn.AppendRequest{Stream: streams[id], Expected: cairn.Any, Events: events()})
			}
			_, errD := disk.AppendBatch(ctx, reqs...)
			_, errM := model.AppendBatch(ctx, reqs...)
			same(step, "batch", errD, errM)
		case op < 14:
			v, err := model.StreamVersion(ctx, s)
			if err != nil {
				continue
			}
			before := rng.Int64N(v + 2)
			same(step, "truncate "+s, disk.TruncateStream(ctx, s, before), model.TruncateStream(ctx, s, before))
		case op < 15:
			same(step, "delete "+s, disk.DeleteStream(ctx, s, cairn.Any), model.DeleteStream(ctx, s, cairn.Any))
		case op < 16 && step > 75:
			same(step, "tombstone "+s, disk.TombstoneStream(ctx, s, cairn.Any), model.TombstoneStream(ctx, s, cairn.Any))
		case op < 18:
			same(step, "compact", disk.Compact(ctx), model.Compact(ctx))
			live := map[uint64]bool{}
			for _, id := range streams {
				for e, err := range model.Stream(ctx, id, 0, cairn.Forward) {
					if err != nil {
						break
					}
					live[e.Position] = true
				}
			}
			for e, err := range model.All(ctx, 0, cairn.Forward) {
				if err != nil {
					t.Fatal(err)
				}
				if !live[e.Position] {
					compacted[e.Position] = true
				}
			}
		default:
			if crash {
				fs = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, uint64(step)))})
				_ = disk.Close()
				opts.FS = fs
			} else if err := disk.Close(); err != nil {
				t.Fatal(err)
			}
			disk = open()
		}
		compareStores(t, step, disk, model, streams, compacted)
	}
}

// sameKind reports whether two errors match the same sentinel of the root
// package.
func sameKind(a, b error) bool {
	for _, e := range []error{cairn.ErrStreamNotFound, cairn.ErrStreamDeleted, cairn.ErrDuplicateEvent} {
		if errors.Is(a, e) && errors.Is(b, e) {
			return true
		}
	}
	var wa, wb *cairn.WrongExpectedVersionError
	if errors.As(a, &wa) && errors.As(b, &wb) {
		return wa.Actual == wb.Actual
	}
	var ia, ib *cairn.InvalidArgumentError
	return errors.As(a, &ia) && errors.As(b, &ib) && ia.Field == ib.Field
}

// compareStores checks that both stores hold the same log and streams.
func compareStores(t *testing.T, step int, disk, model *cairn.Store, streams []string, compacted map[uint64]bool) {
	t.Helper()
	ctx := context.Background()
	collect := func(s *cairn.Store, stream string, dir cairn.Direction) ([]cairn.Event, error) {
		var out []cairn.Event
		var seq func(func(cairn.Event, error) bool)
		if stream == "" {
			from := uint64(0)
			if dir == cairn.Backward {
				from = math.MaxUint64
			}
			seq = s.All(ctx, from, dir)
		} else {
			from := int64(0)
			if dir == cairn.Backward {
				from = cairn.StreamEnd
			}
			seq = s.Stream(ctx, stream, from, dir)
		}
		for e, err := range seq {
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	for _, stream := range append([]string{""}, streams...) {
		for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
			got, errD := collect(disk, stream, dir)
			want, errM := collect(model, stream, dir)
			want = slices.DeleteFunc(want, func(e cairn.Event) bool { return compacted[e.Position] })
			if (errD == nil) != (errM == nil) || (errD != nil && !sameKind(errD, errM)) {
				t.Fatalf("step %d: read %q %v: engine %v, model %v", step, stream, dir, errD, errM)
			}
			if len(got) != len(want) {
				have := map[uint64]bool{}
				for _, e := range got {
					have[e.Position] = true
				}
				var missing []string
				for _, e := range want {
					if !have[e.Position] {
						missing = append(missing, fmt.Sprintf("%s@%d(%d)", e.StreamID, e.Version, e.Position))
					}
				}
				t.Fatalf("step %d: read %q %v: engine %d events, model %d; missing %v", step, stream, dir, len(got), len(want), missing)
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Position != w.Position || g.StreamID != w.StreamID || g.Version != w.Version || g.ID != w.ID ||
					g.Type != w.Type || string(g.Data) != string(w.Data) || string(g.Metadata) != string(w.Metadata) {
					t.Fatalf("step %d: read %q %v, event %d: engine %s@%d (position %d), model %s@%d (position %d)",
						step, stream, dir, i, g.StreamID, g.Version, g.Position, w.StreamID, w.Version, w.Position)
				}
			}
		}
	}
	var gotStreams, wantStreams []string
	for s, err := range disk.Streams(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		gotStreams = append(gotStreams, s)
	}
	for s, err := range model.Streams(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		wantStreams = append(wantStreams, s)
	}
	if !slices.Equal(gotStreams, wantStreams) {
		t.Fatalf("step %d: streams: engine %v, model %v", step, gotStreams, wantStreams)
	}
}
