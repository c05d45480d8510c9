package subscription

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cairndb/cairn"
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

// Stats are a group's figures for monitoring. Unlike [Info] they start
// no new rate measurement, so that a scraper does not disturb the rates
// that clients read.
type Stats struct {
	Stream, Group string
	// Lag counts what lies in the group's stream after the last event it
	// processed (acked, skipped or parked): versions of its stream, or
	// positions of the log for a group on $all.
	Lag uint64
	// InFlight, Parked and Buffered are as in [Info].
	InFlight, Parked, Buffered int
	// Consumers counts the connected consumers.
	Consumers int
}

// Stats returns the figures of every group, loading the groups that no
// consumer has used since the Manager started. It reads the head of each
// group's stream.
func (m *Manager) Stats(ctx context.Context) ([]Stats, error) {
	r, _, err := m.readRegistry(ctx)
	if err != nil {
		return nil, err
	}
	var out []Stats
	for _, d := range r.Groups {
		g, err := m.running(ctx, d)
		if err != nil {
			return out, err
		}
		head, err := m.head(ctx, d.Stream)
		if err != nil {
			return out, err
		}
		g.mu.Lock()
		st := Stats{
			Stream: g.d.Stream, Group: g.d.Group,
			InFlight: len(g.inflight), Parked: len(g.parked), Buffered: len(g.buffered),
			Consumers: len(g.cons),
		}
		processed := g.processedLocked()
		g.mu.Unlock()
		st.Lag = head - min(head, processed)
		out = append(out, st)
	}
	return out, nil
}

// head returns the number after the last event of stream: a position for
// $all, a version otherwise; 0 when it holds none.
func (m *Manager) head(ctx context.Context, stream string) (uint64, error) {
	if stream == AllStream {
		last, ok, err := m.store.LastPosition(ctx)
		if err != nil || !ok {
			return 0, err
		}
		return last + 1, nil
	}
	v, err := m.links.StreamVersion(ctx, stream)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return uint64(v) + 1, nil
}
