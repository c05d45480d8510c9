package cairn

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// idGen makes the time-ordered event IDs a Store assigns: UUID version 7
// (RFC 9562) with 48 bits of Unix milliseconds, 12 bits that count within a
// millisecond so that the IDs one Store makes are strictly increasing, and 62
// random bits. An append reads crypto/rand once: the random bits of up to
// four IDs, or for more the 32-byte seed of a ChaCha8 stream (a
// cryptographically strong generator, math/rand/v2) that gives them,
// four times faster than reading them all from crypto/rand, which keeps ID
// generation off the profile of large appends.
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
	var seed [32]byte
	if _, err := rand.Read(seed[:8*min(missing, 4)]); err != nil {
		return err
	}
	clock := g.next(missing)
	if missing > 4 {
		fillStreamed(events, clock, mrand.NewChaCha8(seed))
		return nil
	}
	k := 0
	for i := range events {
		if events[i].ID == uuid.Nil {
			events[i].ID = newID(clock+uint64(k), binary.BigEndian.Uint64(seed[8*k:]))
			k++
		}
	}
	return nil
}

// fillStreamed sets IDs from clock on, with random bits from stream, on
// the events of events that have none.
func fillStreamed(events []EventData, clock uint64, stream *mrand.ChaCha8) {
	for i := range events {
		if events[i].ID == uuid.Nil {
			events[i].ID = newID(clock, stream.Uint64())
			clock++
		}
	}
}

// newID is the ID of clock value clock (milliseconds << 12 | counter) with
// random bits from bits.
func newID(clock, bits uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], clock>>12<<16|0x7<<12|clock&0xfff)
	binary.BigEndian.PutUint64(id[8:], bits&^(0x3<<62)|0x2<<62) // variant 10
	return id
}
