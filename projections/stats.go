package projections

import (
	"context"
	"fmt"
	"slices"
)

// Statistics is the status of a projection, with the fields of the
// KurrentDB protocol's StatisticsResp.Details.
type Statistics struct {
	Name          string
	EffectiveName string
	Mode          Mode
	// Status is KurrentDB's: "Running", "Stopped", "Completed",
	// "Aborted/Stopped", "Faulted", with " (Enabled)" after Stopped and
	// Faulted when the projection is still enabled.
	Status string
	// StateReason says why a projection faulted.
	StateReason string
	Enabled     bool
	// Position is where the projection is: "C:<position>/P:<position>"
	// (the global position of the last event processed) or
	// "<stream>: <version>" for a projection of one stream.
	Position string
	// LastCheckpoint is the position of its last checkpoint, in the same
	// form.
	LastCheckpoint string
	// Progress is how far through its source it is, in percent.
	Progress float32
	// EventsProcessedAfterRestart counts the events handled since the
	// projection last started.
	EventsProcessedAfterRestart int64
	// PartitionsCached is the number of partition states in memory.
	PartitionsCached int32
	// BufferedEvents are events read and not yet processed.
	BufferedEvents int64
	// WritePendingEventsBeforeCheckpoint are emitted events waiting for
	// the next checkpoint, which writes them.
	WritePendingEventsBeforeCheckpoint int32
	WritePendingEventsAfterCheckpoint  int32
	WritesInProgress                   int32
	ReadsInProgress                    int32
	CheckpointStatus                   string
	// CoreProcessingTime is the time spent processing events, in
	// milliseconds.
	CoreProcessingTime int64
	// Version counts the changes of the definition; Epoch is the version
	// of its last Reset.
	Version int64
	Epoch   int64
}

// Statistics returns the status of the projection called name.
func (m *Manager) Statistics(ctx context.Context, name string) (Statistics, error) {
	if b, ok := m.builtins[name]; ok {
		return builtinStatistics(ctx, b), nil
	}
	p, err := m.get("statistics", name)
	if err != nil {
		return Statistics{}, err
	}
	return p.statistics(), nil
}

// List returns the status of every projection whose mode is one of modes
// (every projection when none is given): the system's projections first,
// then the others in the order they were created.
func (m *Manager) List(ctx context.Context, modes ...Mode) []Statistics {
	var out []Statistics
	if len(modes) == 0 || slices.Contains(modes, Continuous) {
		names := make([]string, 0, len(m.builtins))
		for n := range m.builtins {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			out = append(out, builtinStatistics(ctx, m.builtins[n]))
		}
	}
	m.mu.Lock()
	ps := make([]*projection, 0, len(m.order))
	for _, n := range m.order {
		ps = append(ps, m.projections[n])
	}
	m.mu.Unlock()
	for _, p := range ps {
		st := p.statistics()
		if len(modes) == 0 || slices.Contains(modes, st.Mode) {
			out = append(out, st)
		}
	}
	return out
}

func builtinStatistics(ctx context.Context, b Builtin) Statistics {
	st := b.Statistics(ctx)
	st.Name, st.EffectiveName, st.Mode = b.Name(), b.Name(), Continuous
	return st
}

func (p *projection) statistics() Statistics {
	def := p.def.Load()
	rs := p.r.Load().snapshot()
	st := Statistics{
		Name:                               p.name,
		EffectiveName:                      p.name,
		Mode:                               def.mode(),
		Enabled:                            def.Enabled,
		Position:                           rs.position,
		LastCheckpoint:                     rs.lastCheckpoint,
		Progress:                           rs.progress,
		EventsProcessedAfterRestart:        rs.processed,
		PartitionsCached:                   rs.partitions,
		BufferedEvents:                     rs.buffered,
		WritePendingEventsBeforeCheckpoint: rs.pendingWrites,
		CoreProcessingTime:                 rs.coreTime.Milliseconds(),
		Version:                            def.Version,
		Epoch:                              def.Epoch,
	}
	if rs.writing {
		st.WritesInProgress = 1
		st.CheckpointStatus = "Writing (1)"
	}
	if rs.reading {
		st.ReadsInProgress = 1
	}
	enabled := ""
	if def.Enabled {
		enabled = " (Enabled)"
	}
	switch rs.status {
	case statusRunning:
		st.Status = "Running"
	case statusFaulted:
		st.Status = "Faulted" + enabled
		st.StateReason = rs.reason
	case statusCompleted:
		st.Status = "Completed"
	case statusAborted:
		st.Status = "Aborted/Stopped"
	default:
		st.Status = "Stopped" + enabled
	}
	return st
}

// Lag is how far a projection is behind its source.
type Lag struct {
	// Name is the projection's.
	Name string
	// Events counts what lies in its source after the last event it
	// processed: global positions for a projection of the log (all
	// streams, categories, event types), versions for a projection of one
	// stream.
	Events uint64
}

// Lags returns the lag of each projection that has processed events since
// it was loaded, in the order they were created, whatever their status: a
// stopped or faulted projection falls behind as events arrive. KurrentDB's
// standard projections, which cairn's index keeps in the commit that
// writes the events, are never behind and are not listed. It reads the
// head of each source; the first error ends it.
func (m *Manager) Lags(ctx context.Context) ([]Lag, error) {
	m.mu.Lock()
	ps := make([]*projection, 0, len(m.order))
	for _, n := range m.order {
		ps = append(ps, m.projections[n])
	}
	m.mu.Unlock()
	var out []Lag
	for _, p := range ps {
		rs := p.r.Load().snapshot()
		if rs.src == nil {
			continue
		}
		head, err := rs.src.head(ctx)
		if err != nil {
			return out, fmt.Errorf("projection %s: %w", p.name, err)
		}
		out = append(out, Lag{Name: p.name, Events: head - min(head, rs.next)})
	}
	return out, nil
}
