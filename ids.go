package cairn

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// idGen makes the time-ordered event IDs a Store assigns: UUID version 7
// (RFC 9562) with 48 bits of Unix milliseconds, 12 bits that count within a
// millisecond so that the IDs one Store makes are strictly increasing, and 62
// random bits.
//
// The random bits come from ChaCha8 streams (math/rand/v2's
// cryptographically strong generator), each seeded with 32 bytes from
// crypto/rand when it is made and kept in a sync.Pool, so that an append
// reads no system randomness and concurrent appends share no state but the
// clock. Reading crypto/rand for each append cost W2 at 256 writers about
// a twentieth of its CPU, most of it in a flag that every call to
// crypto/rand swaps atomically (docs/benchmarks.md).
type idGen struct {
	last atomic.Uint64 // milliseconds << 12 | counter, of the last ID made
	rng  sync.Pool     // of *mrand.ChaCha8
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

// stream returns a random stream of the pool's, or a new one seeded from
// crypto/rand; put it back when done.
func (g *idGen) stream() (*mrand.ChaCha8, error) {
	if r, ok := g.rng.Get().(*mrand.ChaCha8); ok {
		return r, nil
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	return mrand.NewChaCha8(seed), nil
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
	r, err := g.stream()
	if err != nil {
		return err
	}
	clock := g.next(missing)
	for i := range events {
		if events[i].ID == uuid.Nil {
			events[i].ID = newID(clock, r.Uint64())
			clock++
		}
	}
	g.rng.Put(r)
	return nil
}

// newID is the ID of clock value clock (milliseconds << 12 | counter) with
// random bits from bits.
func newID(clock, bits uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], clock>>12<<16|0x7<<12|clock&0xfff)
	binary.BigEndian.PutUint64(id[8:], bits&^(0x3<<62)|0x2<<62) // variant 10
	return id
}
