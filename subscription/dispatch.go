package subscription

import (
	"encoding/json"
	"hash/fnv"
	"time"

	"github.com/cairndb/cairn/links"
)

// dispatchLocked assigns the events that are ready to consumers with room in
// their in-flight limit, chosen by the group's strategy, and queues them for
// the consumers' Next. Events past the retry limit are set aside for
// parking. Called with mu held.
func (g *group) dispatchLocked() {
	if g.err != nil {
		return
	}
	now := time.Now()
	for len(g.retry)+len(g.buffered) > 0 {
		if it := g.peekLocked(); it.retries > max(g.d.Retries, 0) {
			g.toPark = append(g.toPark, g.takeLocked())
			continue
		}
		c := g.pickLocked(g.peekLocked())
		if c == nil {
			return
		}
		it := g.takeLocked()
		it.owner, it.delivered = c, false
		g.dueLocked(it, now)
		g.inflight[it.ev.ID] = it
		c.held++
		c.queue = append(c.queue, it)
	}
}

// pickLocked returns the consumer to assign it to, or nil when it must wait.
// Called with mu held.
func (g *group) pickLocked(it *item) *Consumer {
	n := len(g.ring)
	if n == 0 {
		return nil
	}
	switch g.d.strategy() {
	case Pinned, PinnedByCorrelation:
		h := fnv.New32a()
		h.Write([]byte(g.pinKey(it)))
		if c := g.ring[int(h.Sum32()%uint32(n))]; c.held < c.limit {
			return c
		}
		return nil // wait for that consumer: a stream's events stay in order
	case DispatchToSingle:
		for _, c := range g.ring {
			if c.readyLocked() {
				return c
			}
		}
		return nil
	}
	for k := range n {
		if c := g.ring[(g.rr+k)%n]; c.readyLocked() {
			g.rr = (g.rr + k + 1) % n
			return c
		}
	}
	return nil
}

// peekLocked returns the next event to assign. Called with mu held, when
// there is one.
func (g *group) peekLocked() *item {
	if len(g.retry) > 0 {
		return g.retry[0]
	}
	return g.buffered[0]
}

// takeLocked removes the next event to assign: retries first, then the log.
// Called with mu held.
func (g *group) takeLocked() *item {
	if len(g.retry) > 0 {
		it := g.retry[0]
		g.retry[0] = nil
		g.retry = g.retry[1:]
		return it
	}
	it := g.buffered[0]
	g.buffered[0] = nil
	g.buffered = g.buffered[1:]
	return it
}

// pinKey is what a pinned group pins an event by: its stream, or with
// PinnedByCorrelation its correlation id when its metadata has one. For a
// link, the stream is that of the event it names, resolved or not, as
// KurrentDB does.
func (g *group) pinKey(it *item) string {
	if g.d.strategy() == PinnedByCorrelation {
		if id, ok := correlationID(it.ev.Metadata); ok {
			return id
		}
	}
	if it.ev.Type == links.LinkType {
		if stream, _, ok := links.Parse(it.ev.Data); ok {
			return stream
		}
	}
	return it.ev.StreamID
}

// correlationID returns the string "$correlationId" of metadata, a JSON
// object, as KurrentDB reads it, and false when there is none.
func correlationID(metadata []byte) (string, bool) {
	var m map[string]json.RawMessage // the key matches exactly, as in KurrentDB
	var id string
	if len(metadata) == 0 || json.Unmarshal(metadata, &m) != nil || json.Unmarshal(m["$correlationId"], &id) != nil {
		return "", false
	}
	return id, true
}
