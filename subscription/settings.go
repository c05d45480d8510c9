package subscription

import (
	"fmt"
	"slices"
	"time"
)

// Defaults applied by [Settings.EnsureDefaults].
const (
	DefaultMaxRetryCount   = 10
	DefaultMessageTimeout  = 30 * time.Second
	DefaultGroupBufferSize = 500
	DefaultCheckpointAfter = 10
)

// DefaultConsumerInFlight is the in-flight limit of a consumer whose
// [ConsumerOptions.InFlight] is zero.
const DefaultConsumerInFlight = 10

// Settings configure a persistent subscription group. The zero value is
// ready to use: zero fields take their defaults, as documented on each.
// Out-of-range settings are refused by [Settings.Validate], and so by
// Create and Update, with an error naming the setting; none is replaced by
// another value.
type Settings struct {
	// Filter selects the events the group delivers. Events it does not
	// pass count as processed.
	Filter Filter
	// Start is where a new group starts: a position on $all, a version on
	// a stream. It applies only when the group is created; afterwards the
	// group resumes from its checkpoint.
	Start From
	// MaxRetryCount is how many times an event is delivered again (after
	// a nack with retry, a message timeout or its consumer leaving) before
	// it is parked. Only events a consumer received from Next count. Zero
	// means DefaultMaxRetryCount; negative means none: the first retry
	// parks the event.
	MaxRetryCount int
	// MessageTimeout is how long a consumer may hold an event, from when
	// its Next returns it, without acking or nacking it before it is
	// delivered again as a retry. It also bounds how long events assigned
	// to a consumer wait for its Next: after it they go back to the group,
	// without counting a retry. Zero means DefaultMessageTimeout; negative
	// never times out. It is kept in whole milliseconds: a positive timeout
	// under 1ms is refused.
	MessageTimeout time.Duration
	// BufferSize bounds the events the group holds: read ahead, in flight
	// with consumers, or waiting for a retry. Zero means
	// DefaultGroupBufferSize.
	BufferSize int
	// CheckpointAfter is how many processed events make the group write
	// its checkpoint. Zero means DefaultCheckpointAfter. The checkpoint is
	// also written when the last consumer leaves and when the Manager
	// closes.
	CheckpointAfter int
	// MaxSubscriberCount limits the consumers connected at once. Zero
	// means no limit.
	MaxSubscriberCount int
	// Strategy chooses the consumer of each event. The zero value is
	// RoundRobin.
	Strategy Strategy
	// ResolveLinks delivers each link with the event it names
	// ([Delivery.Target]), as KurrentDB's resolveLinkTos does. Update may
	// change it; it applies to the events read after the change.
	ResolveLinks bool

	// The settings below are kept as given and reported by Info, so that
	// a protocol that has them (KurrentDB's) reports what its client set;
	// the group runs without them. Zero means zero; none may be negative.

	// LiveBufferSize and ReadBatchSize are KurrentDB's live buffer size
	// and read batch size: a group reads up to BufferSize events at a
	// time, live or not.
	LiveBufferSize, ReadBatchSize int
	// MaxCheckpointCount is KurrentDB's upper bound of events processed
	// between two checkpoints (max_checkpoint_count); a group writes its
	// checkpoint every CheckpointAfter events.
	MaxCheckpointCount int
	// CheckpointInterval is KurrentDB's checkpoint_after, the time between
	// checkpoints; a group checkpoints by count. It is kept in whole
	// milliseconds.
	CheckpointInterval time.Duration
	// ExtraStatistics is KurrentDB's extra_statistics: latency figures
	// that Info does not gather.
	ExtraStatistics bool
}

// Strategy is how a group chooses the consumer of an event. Each skips
// consumers that hold their in-flight limit; RoundRobin and DispatchToSingle
// also skip a consumer whose assigned events waited a MessageTimeout for its
// Next, until it calls Next again.
//
// They are the KurrentDB protocol's five strategies, under its names, but
// for DispatchToSingle's and RoundRobin's differences in the details of
// when a busy consumer is skipped.
type Strategy uint8

const (
	// RoundRobin takes the consumers in turn.
	RoundRobin Strategy = iota
	// DispatchToSingle gives every event to the first consumer that
	// connected, and to the next ones only while it is at its limit.
	DispatchToSingle
	// Pinned gives all the events of a stream to one consumer (chosen by a
	// hash of the stream id among the connected consumers; for a link, the
	// stream of the event it names, as in KurrentDB), which keeps
	// each stream's events in order while that set does not change. An
	// event whose consumer is at its limit waits, and so do those behind
	// it.
	Pinned
	// PinnedByCorrelation pins as Pinned does, by the event's correlation
	// id rather than its stream: the string "$correlationId" of its
	// metadata, a JSON object, as KurrentDB reads it. An event without one
	// is pinned by its stream, as with Pinned.
	PinnedByCorrelation
)

var strategyNames = []string{"RoundRobin", "DispatchToSingle", "Pinned", "PinnedByCorrelation"}

const strategyList = "RoundRobin, DispatchToSingle, Pinned or PinnedByCorrelation"

// String returns the strategy's name as in the KurrentDB protocol.
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return fmt.Sprintf("Strategy(%d)", s)
}

// ParseStrategy returns the strategy named name: "RoundRobin",
// "DispatchToSingle", "Pinned" or "PinnedByCorrelation", as in the
// KurrentDB protocol (the case matters). Any other name is refused with an
// [cairn.InvalidArgumentError].
func ParseStrategy(name string) (Strategy, error) {
	if i := slices.Index(strategyNames, name); i >= 0 {
		return Strategy(i), nil
	}
	return 0, invalidf("settings.consumer_strategy", "unknown strategy %q; use %s", name, strategyList)
}

// EnsureDefaults fills in zero fields with their defaults.
func (s *Settings) EnsureDefaults() {
	if s.MaxRetryCount == 0 {
		s.MaxRetryCount = DefaultMaxRetryCount
	}
	if s.MessageTimeout == 0 {
		s.MessageTimeout = DefaultMessageTimeout
	}
	if s.BufferSize == 0 {
		s.BufferSize = DefaultGroupBufferSize
	}
	if s.CheckpointAfter == 0 {
		s.CheckpointAfter = DefaultCheckpointAfter
	}
}

// Validate reports the first setting out of its range, as an
// [cairn.InvalidArgumentError] naming it. [Manager.Create] and
// [Manager.Update] refuse such settings; none is ever replaced by another
// value.
func (s Settings) Validate() error {
	switch {
	case s.BufferSize < 0:
		return invalidf("settings.buffer_size", "must not be negative, got %d", s.BufferSize)
	case s.CheckpointAfter < 0:
		return invalidf("settings.checkpoint_after", "must not be negative, got %d", s.CheckpointAfter)
	case s.MaxSubscriberCount < 0:
		return invalidf("settings.max_subscriber_count", "must not be negative, got %d", s.MaxSubscriberCount)
	case s.LiveBufferSize < 0:
		return invalidf("settings.live_buffer_size", "must not be negative, got %d", s.LiveBufferSize)
	case s.ReadBatchSize < 0:
		return invalidf("settings.read_batch_size", "must not be negative, got %d", s.ReadBatchSize)
	case s.MaxCheckpointCount < 0:
		return invalidf("settings.max_checkpoint_count", "must not be negative, got %d", s.MaxCheckpointCount)
	case s.CheckpointInterval < 0 || (s.CheckpointInterval > 0 && s.CheckpointInterval < time.Millisecond):
		return invalidf("settings.checkpoint_interval", "must be zero or at least 1ms, got %v", s.CheckpointInterval)
	case s.MessageTimeout > 0 && s.MessageTimeout < time.Millisecond:
		// Kept in milliseconds, it would become zero: every event would
		// time out as soon as it is delivered.
		return invalidf("settings.message_timeout", "must be at least 1ms (or negative for none), got %v", s.MessageTimeout)
	case int(s.Strategy) >= len(strategyNames):
		return invalidf("settings.consumer_strategy", "unknown strategy %d; use %s", s.Strategy, strategyList)
	}
	return s.Filter.Validate()
}
