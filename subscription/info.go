package subscription

import (
	"slices"
)

// Info describes a persistent subscription group.
type Info struct {
	Stream   string
	Group    string
	Settings Settings
	// Checkpoint is the stored checkpoint: the group resumes from this
	// position ($all) or version (stream) after a restart. Every event
	// before it was processed.
	Checkpoint uint64
	// Processed is the first event not yet processed, which the next
	// checkpoint will store.
	Processed uint64
	// ReadUpTo is the next position or version the group will read.
	ReadUpTo uint64
	// Consumers are the connected consumers.
	Consumers []ConsumerInfo
	// Buffered counts the events read and waiting to be assigned to a
	// consumer, InFlight those assigned and unanswered (including those
	// waiting for a consumer's Next), Parked those in the parked list.
	Buffered, InFlight, Parked int
	// Delivered, Acked, Nacked and ParkedTotal count since the group was
	// loaded in this process.
	Delivered, Acked, Nacked, ParkedTotal uint64
}

// ConsumerInfo describes a consumer of a group.
type ConsumerInfo struct {
	Name string
	// InFlight counts the events assigned to the consumer and not
	// answered, including those waiting for its next call to Next.
	InFlight int
}

func (g *group) info() Info {
	g.mu.Lock()
	defer g.mu.Unlock()
	in := Info{
		Stream:      g.d.Stream,
		Group:       g.d.Group,
		Settings:    g.d.settings(),
		Checkpoint:  g.saved,
		Processed:   g.processedLocked(),
		ReadUpTo:    g.cursor,
		Buffered:    len(g.buffered),
		InFlight:    len(g.inflight),
		Parked:      len(g.parked),
		Delivered:   g.stats.delivered,
		Acked:       g.stats.acked,
		Nacked:      g.stats.nacked,
		ParkedTotal: g.stats.parked,
	}
	for c := range g.cons {
		in.Consumers = append(in.Consumers, ConsumerInfo{Name: c.name, InFlight: c.held})
	}
	slices.SortFunc(in.Consumers, func(a, b ConsumerInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return in
}
