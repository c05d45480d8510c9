package diskstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// TestIDSet checks the retry records kept in memory against a map, across
// chunks: a lookup finds the last record of an ID (a removal included),
// lookups made between additions see every record added before, the
// sorted records are those of the map, in ID order, and iteration from
// any record yields those added from it.
func TestIDSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var s idSet
	want := map[id128]idRec{}
	var order []stagedID
	for round := range 40 {
		var staged []stagedID
		for range rng.IntN(2 * idChunk / 5) {
			// Few IDs, so that many are written again or removed.
			k := id128{hi: rng.Uint64N(4), lo: rng.Uint64N(2000)}
			rec := idRec{pos: rng.Uint64(), gone: rng.IntN(5) == 0}
			staged = append(staged, stagedID{k: k, rec: rec})
			want[k] = rec
		}
		s.add(staged...)
		order = append(order, staged...)
		if s.n != len(order) {
			t.Fatalf("round %d: %d records, want %d", round, s.n, len(order))
		}
		for range 20 {
			k := id128{hi: rng.Uint64N(4), lo: rng.Uint64N(2100)}
			got, ok := s.find(k)
			w, wok := want[k]
			if ok != wok || got != w {
				t.Fatalf("round %d: find(%v) = %+v, %v; want %+v, %v", round, k, got, ok, w, wok)
			}
		}
	}
	for _, from := range []int{0, 1, idChunk - 1, idChunk, idChunk + 1, len(order) - 1, len(order)} {
		var got []id128
		for r := range s.all(from) {
			got = append(got, r.k)
		}
		var w []id128
		for _, r := range order[from:] {
			w = append(w, r.k)
		}
		if !slices.Equal(got, w) {
			t.Fatalf("all(%d) yields %d records, want %d", from, len(got), len(w))
		}
	}
	sorted := s.sorted()
	if len(sorted) != len(want) {
		t.Fatalf("%d sorted records, want %d", len(sorted), len(want))
	}
	for i, r := range sorted {
		if i > 0 && sorted[i-1].k.cmp(r.k) >= 0 {
			t.Fatalf("sorted records out of order at %d", i)
		}
		if want[r.k] != r.rec {
			t.Fatalf("sorted record of %v is %+v, want %+v, the last written", r.k, r.rec, want[r.k])
		}
	}
}

// TestIDMarkMissing: a store whose index holds none of its retry records
// and no ID mark (as after a crash before the first ingest) opens
// read-only, reads whole and passes the check; opened for writing, it
// derives every retry record from the log: it recognises the retry of
// every append, and the check then finds them all in the index.
func TestIDMarkMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s := cairn.NewStore(db, cairn.Options{})
	type done struct {
		stream string
		ev     cairn.EventData
		res    cairn.AppendResult
	}
	var appends []done
	for i := range 200 {
		a := done{stream: fmt.Sprint("s-", i%7), ev: cairn.EventData{ID: uuid.New(), Type: "E"}}
		if a.res, err = s.Append(ctx, a.stream, cairn.Any, a.ev); err != nil {
			t.Fatal(err)
		}
		appends = append(appends, a)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editIndex(t, dir, func(db *pebble.DB, b *pebble.Batch) {
		mustDo(t, b.Delete(idMarkKey, nil))
		for _, a := range appends {
			mustDo(t, b.Delete(idKey(a.ev.ID), nil))
		}
	})
	checkOK := func() {
		t.Helper()
		rep, err := Check(ctx, dir, CheckOptions{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !rep.Compared {
			t.Fatalf("check: ok %v, compared %v: %v", rep.OK(), rep.Compared, rep.Problems)
		}
	}
	checkOK()

	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only open without the ID mark: %v", err)
	}
	events, err := ro.ReadAll(ctx, 0, 1000, cairn.Forward)
	if err != nil || len(events) != len(appends) {
		t.Fatalf("read-only: %d events, %v; want %d", len(events), err, len(appends))
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s = cairn.NewStore(db, cairn.Options{})
	for _, a := range appends {
		if res, err := s.Append(ctx, a.stream, cairn.Any, a.ev); err != nil || res != a.res {
			t.Fatalf("retry of the append of %s = %+v, %v; want %+v", a.ev.ID, res, err, a.res)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkOK()
	ro = &DB{}
	ro.opts.ensureDefaults()
	ro.lg = ro.opts.Logger
	po := ro.pebbleOptions()
	po.ReadOnly = true
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	for _, a := range appends {
		if _, closer, err := pdb.Get(idKey(a.ev.ID)); err != nil {
			t.Fatalf("the retry record of %s after a writable open: %v", a.ev.ID, err)
		} else {
			_ = closer.Close()
		}
	}
}
