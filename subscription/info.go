package subscription

import (
	"slices"
	"time"
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
	// Retrying counts the events waiting to be delivered again.
	Retrying int
	// Delivered, Acked, Nacked and ParkedTotal count since the group was
	// loaded in this process.
	Delivered, Acked, Nacked, ParkedTotal uint64
	// Rate is the group's deliveries since the previous Info or List.
	Rate Rate
}

// Rate measures deliveries between two calls of Info (or List), as
// KurrentDB's statistics do.
type Rate struct {
	// Count is the events delivered since the previous measurement.
	Count uint64
	// PerSecond is Count over the time since the previous measurement
	// (since the group loaded or the consumer connected, for the first).
	PerSecond float64
}

// ConsumerInfo describes a consumer of a group.
type ConsumerInfo struct {
	Name string
	// From and User are the consumer's [ConsumerOptions].
	From, User string
	// InFlight counts the events assigned to the consumer and not
	// answered, including those waiting for its next call to Next.
	InFlight int
	// Available is how many more events the consumer may be assigned:
	// its in-flight limit less InFlight.
	Available int
	// Delivered counts the events its Next returned.
	Delivered uint64
	// Rate is its deliveries since the previous Info or List.
	Rate Rate
}

// meter counts deliveries and measures their rate between two calls of
// measure.
type meter struct {
	count    uint64 // in all
	measured uint64 // count at the previous measurement
	at       time.Time
}

func newMeter() meter { return meter{at: time.Now()} }

// measure returns the deliveries since the previous measurement and their
// rate, and starts the next measurement.
func (m *meter) measure(now time.Time) Rate {
	r := Rate{Count: m.count - m.measured}
	if d := now.Sub(m.at).Seconds(); d > 0 {
		r.PerSecond = float64(r.Count) / d
	}
	m.measured, m.at = m.count, now
	return r
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
		Retrying:    len(g.retry),
		Delivered:   g.stats.delivered,
		Acked:       g.stats.acked,
		Nacked:      g.stats.nacked,
		ParkedTotal: g.stats.parked,
	}
	now := time.Now()
	g.rate.count = g.stats.delivered
	in.Rate = g.rate.measure(now)
	for c := range g.cons {
		in.Consumers = append(in.Consumers, ConsumerInfo{
			Name: c.name, From: c.from, User: c.user,
			InFlight: c.held, Available: max(c.limit-c.held, 0),
			Delivered: c.rate.count, Rate: c.rate.measure(now),
		})
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
