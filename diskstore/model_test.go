package diskstore_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/diskstore"
	"github.com/cairndb/cairn/storetest"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// TestModel runs the conformance suite's model test (random appends,
// batches, truncations, deletes, tombstones and compactions, checked after
// every step against the memory engine) with restarts, and requires
// compaction to remove every event that was dead when it ran. Small
// segments make the log span many files, so that compaction removes some of
// them and punches holes in others.
//
// In the crash variant the store lives on a filesystem that keeps only what
// was synced, and instead of being closed and reopened it crashes: a clone
// of the filesystem, keeping a random part of what was not synced, is
// opened. Every step was acknowledged before the crash, so nothing may be
// lost: Open must replay what the index had not made durable, deletes,
// truncations and compactions included.
//
// After every restart the model test submits again every acknowledged
// append whose events are still there, with its event IDs, and requires
// the engine to recognise it. The crash variant runs with random IDs and
// with time-ordered ones: the retry records of the appends after the
// index's last flush are in the log only until Open replays them.
func TestModel(t *testing.T) {
	// Two seeds, each without crashes and with crashes for both kinds of
	// id, make six runs; by default three of them run, so that each seed,
	// each kind of id, and crashes and clean restarts are all covered
	// (the six took the larger part of the package's time under -race,
	// the package's time being the longest in the whole suite on a slow
	// 2-core machine); -model-all runs the six. More seeds: -run TestModel
	// -count N does not vary them; raise the bound here.
	// The runs are apart (each its own directory or filesystem) and run
	// in parallel with each other and the package's other long tests.
	t.Parallel()
	for seed := range uint64(2) {
		if *modelAll || seed == 0 {
			t.Run(fmt.Sprintf("seed%d-crash=false", seed), func(t *testing.T) {
				t.Parallel()
				testModel(t, seed, false, nil)
			})
		}
		for i, ids := range idKinds {
			if !*modelAll && uint64(i) != seed {
				continue // seed0 crashes with the first kind, seed1 with the second
			}
			t.Run(fmt.Sprintf("seed%d-crash=true-%s", seed, ids.name), func(t *testing.T) {
				t.Parallel()
				testModel(t, seed, true, ids.gen(seed))
			})
		}
	}
}

var modelAll = flag.Bool("model-all", false, "run TestModel's six runs (two seeds, without crashes and with crashes for both kinds of id), not three")

func testModel(t *testing.T, seed uint64, crash bool, newID func() uuid.UUID) {
	dir := t.TempDir()
	opts := diskstore.Options{NoSync: true, SegmentBytes: 16 << 10}
	var fs *vfs.MemFS
	if crash {
		fs = vfs.NewCrashableMem()
		dir, opts.FS, opts.NoSync = "db", unlinked(fs), false
		// A small memtable: the index is flushed every few steps, and
		// large groups take the path that syncs before indexing. The
		// runs and retry records in memory are handed off every few
		// dozen appends: crashes come with some on their way into the
		// index, and reads find runs in pebble and in memory.
		opts.MemTableBytes = 128 << 10
		opts = diskstore.WithPendingRecords(opts, 64)
	}
	open := func() *cairn.Store {
		db, err := diskstore.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		return cairn.NewStore(db, cairn.Options{ReadBatch: 50})
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	restart := func(s *cairn.Store) *cairn.Store {
		if crash {
			fs = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, rng.Uint64()))})
			_ = s.Close()
			opts.FS = unlinked(fs)
		} else if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return open()
	}
	s := storetest.RunModel(t, open(), storetest.ModelOptions{Seed: seed, Steps: 150, Restart: restart, CompactRemoves: true, NewID: newID})
	_ = s.Close()
}
