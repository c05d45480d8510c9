package subscription

import (
	"fmt"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
)

// definition is a group as stored in the registry.
type definition struct {
	Stream string `json:"stream"`
	Group  string `json:"group"`
	// ID names the group's state records; a group deleted and created
	// again gets a new one, and so a fresh state.
	ID       uuid.UUID `json:"id"`
	ChangeID uuid.UUID `json:"change_id"`
	Start    uint64    `json:"start"`
	Filter   Filter    `json:"filter"`
	Retries  int       `json:"max_retry_count"`
	// Timeout is in milliseconds; negative never times out.
	Timeout         int64  `json:"message_timeout_ms"`
	BufferSize      int    `json:"buffer_size"`
	CheckpointAfter int    `json:"checkpoint_after"`
	MaxSubscribers  int    `json:"max_subscriber_count"`
	Strategy        string `json:"consumer_strategy,omitempty"`
	ResolveLinks    bool   `json:"resolve_links,omitempty"`
	// StartAtEnd says the group was created to start at the end; Start
	// is where that end was.
	StartAtEnd         bool      `json:"start_at_end,omitempty"`
	LiveBufferSize     int       `json:"live_buffer_size,omitempty"`
	ReadBatchSize      int       `json:"read_batch_size,omitempty"`
	MaxCheckpointCount int       `json:"max_checkpoint_count,omitempty"`
	CheckpointInterval int64     `json:"checkpoint_interval_ms,omitempty"`
	ExtraStatistics    bool      `json:"extra_statistics,omitempty"`
	Created            time.Time `json:"created"`
}

func (d *definition) settings() Settings {
	timeout := time.Duration(d.Timeout) * time.Millisecond
	if d.Timeout < 0 {
		timeout = -1
	}
	start := At(d.Start)
	if d.StartAtEnd {
		start = End
	}
	return Settings{
		Filter:             d.Filter,
		Start:              start,
		MaxRetryCount:      d.Retries,
		MessageTimeout:     timeout,
		BufferSize:         d.BufferSize,
		CheckpointAfter:    d.CheckpointAfter,
		MaxSubscriberCount: d.MaxSubscribers,
		Strategy:           d.strategy(),
		ResolveLinks:       d.ResolveLinks,
		LiveBufferSize:     d.LiveBufferSize,
		ReadBatchSize:      d.ReadBatchSize,
		MaxCheckpointCount: d.MaxCheckpointCount,
		CheckpointInterval: time.Duration(d.CheckpointInterval) * time.Millisecond,
		ExtraStatistics:    d.ExtraStatistics,
	}
}

func (d *definition) set(s Settings) {
	s.EnsureDefaults()
	d.Filter = s.Filter
	d.Retries = s.MaxRetryCount
	d.Timeout = s.MessageTimeout.Milliseconds()
	if s.MessageTimeout < 0 {
		d.Timeout = -1
	}
	d.BufferSize = s.BufferSize
	d.CheckpointAfter = s.CheckpointAfter
	d.MaxSubscribers = s.MaxSubscriberCount
	d.Strategy = s.Strategy.String()
	d.ResolveLinks = s.ResolveLinks
	d.LiveBufferSize = s.LiveBufferSize
	d.ReadBatchSize = s.ReadBatchSize
	d.MaxCheckpointCount = s.MaxCheckpointCount
	d.CheckpointInterval = s.CheckpointInterval.Milliseconds()
	d.ExtraStatistics = s.ExtraStatistics
}

// strategy returns the stored strategy; RoundRobin when none is stored
// (registries written before strategies were kept). A stored name this
// version does not know is refused by check, before a group uses it.
func (d *definition) strategy() Strategy {
	st, _ := ParseStrategy(d.Strategy)
	return st
}

// check refuses a stored definition whose strategy this version does not
// implement, rather than running the group with another one.
func (d *definition) check() error {
	if d.Strategy == "" {
		return nil
	}
	if _, err := ParseStrategy(d.Strategy); err != nil {
		return fmt.Errorf("persistent subscription %q on %s has the strategy %q, which this version of cairn does not implement: %w", d.Group, d.Stream, d.Strategy, cairn.ErrNotSupported)
	}
	return nil
}

func (d definition) stateID() string { return stateIDPrefix + d.ID.String() }

func (d definition) parkedID() string { return d.stateID() + parkedIDSuffix }

type registry struct {
	Groups []definition `json:"groups"`
}

func (r *registry) find(stream, group string) int {
	return slices.IndexFunc(r.Groups, func(d definition) bool { return d.Stream == stream && d.Group == group })
}
