package diskstore

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
)

// TestRecentIDsRule: whatever the order IDs are added in, every ID added
// that is greater than the floor is held, so none is ever said to have no
// record; and the memory held stays bounded.
func TestRecentIDsRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(clock uint64) uuid.UUID {
		var u uuid.UUID
		binary.BigEndian.PutUint64(u[:8], clock)
		binary.BigEndian.PutUint64(u[8:], rng.Uint64())
		return u
	}
	var r recentIDs
	start := id(1000)
	r.reset(start)
	var added []uuid.UUID
	checkAll := func() {
		t.Helper()
		for i, u := range added {
			if !r.mayBeRecorded(u) {
				t.Fatalf("ID %d of %d (%v) added, then said to have no record (floor %x)", i, len(added), u, r.floor)
			}
		}
	}
	for i := range 5 * maxRecentIDs {
		if i%maxRecentIDs == 0 {
			checkAll()
		}
		// Mostly in order; some late, by up to 3000 (and, in the
		// second phase, most); a few far below the floor; and at the
		// end random IDs (UUIDv4) all over.
		clock := uint64(5000 + i)
		switch late := i > 2*maxRecentIDs; {
		case rng.IntN(100) == 0:
			clock = rng.Uint64N(2000)
		case i > 4*maxRecentIDs:
			clock = rng.Uint64()
		case late && rng.IntN(4) != 0, !late && rng.IntN(4) == 0:
			clock -= rng.Uint64N(3000)
		}
		u := id(clock)
		r.add(u)
		added = append(added, u)
		if n := len(r.rising) + len(r.late); n > maxRecentIDs {
			t.Fatalf("after %d adds: %d IDs held, at most %d", i+1, n, maxRecentIDs)
		}
	}
	checkAll()
	if r.floor.cmp(toID128(start)) <= 0 {
		t.Fatalf("the floor never rose")
	}
	// A fresh ID above every one added is known to have no record.
	if r.mayBeRecorded(id(1<<64 - 1)) {
		t.Fatalf("a fresh ID sent to the index")
	}
}

// TestGroupIDs: a group's IDs tell exactly the IDs added since the last
// reset, in order or not, in short groups and in long ones.
func TestGroupIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s groupIDs
	for round := range 100 {
		s.reset()
		want := map[uuid.UUID]bool{}
		var made []uuid.UUID
		n := rng.IntN(3 * maxListedIDs)
		for range n {
			var id uuid.UUID
			if rng.IntN(2) == 0 {
				id = uuid.Must(uuid.NewV7()) // above those before, mostly
			} else {
				binary.BigEndian.PutUint64(id[:8], rng.Uint64())
				binary.BigEndian.PutUint64(id[8:], rng.Uint64())
			}
			if len(made) > 0 && rng.IntN(8) == 0 {
				id = made[rng.IntN(len(made))]
			}
			// Look for it, and for one made before, before adding it.
			if got := s.has(id); got != want[id] {
				t.Fatalf("round %d: has(%v) = %v after %d IDs, want %v", round, id, got, len(made), want[id])
			}
			if len(made) > 0 {
				old := made[rng.IntN(len(made))]
				if !s.has(old) {
					t.Fatalf("round %d: an ID added is not there after %d IDs", round, len(made))
				}
			}
			s.add(id)
			want[id] = true
			made = append(made, id)
		}
	}
}
