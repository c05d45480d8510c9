package cairn

import (
	"crypto/rand"
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// idGen makes the time-ordered event IDs a Store assigns: UUID version 7
// (RFC 9562) with 48 bits of Unix milliseconds, 12 bits that count within a
// millisecond so that the IDs one Store makes are strictly increasing, and 62
// random bits. The random bits of a whole append come from one read of
// crypto/rand, which keeps ID generation off the profile of large appends.
type idGen struct {
	last atomic.Uint64 // milliseconds << 12 | counter, of the last ID made
}

// next reserves n consecutive clock values and returns the first.
func (g *idGen) next(n int) uint64 {
	now := uint64(time.Now().UnixMilli()) << 12
	for {
		last := g.last.Load()
		first := max(now, last+1)
		if g.last.CompareAndSwap(last, first+uint64(n)-1) {
			return first
		}
	}
}

// fill sets an ID on every event of events that has none.
func (g *idGen) fill(events []EventData) error {
	missing := 0
	for _, e := range events {
		if e.ID == uuid.Nil {
			missing++
		}
	}
	if missing == 0 {
		return nil
	}
	random := make([]byte, 8*missing)
	if _, err := rand.Read(random); err != nil {
		return err
	}
	clock := g.next(missing)
	for i := range events {
		if events[i].ID != uuid.Nil {
			continue
		}
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[0:8], clock>>12<<16|0x7<<12|clock&0xfff)
		copy(id[8:], random[:8])
		id[8] = id[8]&0x3f | 0x80 // variant 10
		events[i].ID = id
		random, clock = random[8:], clock+1
	}
	return nil
}
