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
