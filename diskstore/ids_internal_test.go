package diskstore

import (
	"math/rand/v2"
	"slices"
	"testing"
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
