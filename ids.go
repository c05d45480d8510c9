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
// random bits. An append reads crypto/rand once, 32 bytes: the random bits
// of up to four IDs, or for more the seed of a ChaCha8 stream (a
// cryptographically strong generator, math/rand/v2) that gives the rest,
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
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	var stream mrand.ChaCha8
	streamed := missing > len(seed)/8
	if streamed {
		stream.Seed(seed)
	}
	clock := g.next(missing)
	k := 0
	for i := range events {
		if events[i].ID != uuid.Nil {
			continue
		}
		var bits uint64
		if streamed {
			bits = stream.Uint64()
		} else {
			bits = binary.BigEndian.Uint64(seed[8*k:])
		}
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[0:8], clock>>12<<16|0x7<<12|clock&0xfff)
		binary.BigEndian.PutUint64(id[8:], bits&^(0x3<<62)|0x2<<62) // variant 10
		events[i].ID = id
		clock++
		k++
	}
	return nil
}
