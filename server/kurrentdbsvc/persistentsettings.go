package kurrentdbsvc

import (
	"fmt"
	"math"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/subscription"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The settings of KurrentDB's Create and Update requests, checked and mapped
// onto [subscription.Settings], which keeps each as given, so that GetInfo
// and List report what the client set. A value out of its range is refused
// with InvalidArgument naming the field as the protocol spells it; none is
// clamped or replaced. What the protocol's zero means:
//
//   - max_retry_count 0: no retries, the first retry parks the event (as in
//     KurrentDB);
//   - message_timeout 0 (ms or ticks): events never time out (as in
//     KurrentDB); a request without a message timeout takes cairn's
//     default, 30 s;
//   - max_subscriber_count 0: no limit (as in KurrentDB);
//   - history_buffer_size, min_checkpoint_count 0: cairn's defaults (500
//     events, 10 events), since zero is what a client that leaves them out
//     sends; GetInfo reports the default;
//   - max_checkpoint_count 0: not given; otherwise it must be at least
//     min_checkpoint_count.
//
// A group holds history_buffer_size events and checkpoints every
// min_checkpoint_count processed events; live_buffer_size,
// read_batch_size, max_checkpoint_count, checkpoint_after and
// extra_statistics are kept and reported but do not change how it runs.
// resolve_links delivers each link with the event it names.

// protoSettings are the fields the Create and Update settings share.
type protoSettings interface {
	GetMaxRetryCount() int32
	GetMinCheckpointCount() int32
	GetMaxCheckpointCount() int32
	GetMaxSubscriberCount() int32
	GetLiveBufferSize() int32
	GetReadBatchSize() int32
	GetHistoryBufferSize() int32
	GetResolveLinks() bool
	GetExtraStatistics() bool
}

// protoDuration is one of the protocol's durations: a oneof of milliseconds
// and .NET ticks of 100 ns.
type protoDuration struct {
	field string // the member the client set, for messages
	set   bool
	n     int64
	ticks bool
}

const ticksPerMillisecond = 10_000

// maxMilliseconds is the longest duration, in milliseconds, that a
// time.Duration holds.
const maxMilliseconds = int64(math.MaxInt64 / time.Millisecond)

func (d protoDuration) milliseconds() int64 {
	if d.ticks {
		return d.n / ticksPerMillisecond
	}
	return d.n
}

func (d protoDuration) check() error {
	switch {
	case !d.set:
		return nil
	case d.n < 0:
		return invalidSetting(d.field, "must not be negative, got %d", d.n)
	case d.ticks && d.n > 0 && d.n < ticksPerMillisecond:
		return invalidSetting(d.field, "%d ticks is less than a millisecond, the unit cairn keeps", d.n)
	case d.milliseconds() > maxMilliseconds:
		return invalidSetting(d.field, "%d is longer than cairn can keep (%d ms)", d.n, maxMilliseconds)
	}
	return nil
}

func createTimeout(st *ps.CreateReq_Settings) protoDuration {
	switch v := st.GetMessageTimeout().(type) {
	case *ps.CreateReq_Settings_MessageTimeoutMs:
		return protoDuration{field: "message_timeout_ms", set: true, n: int64(v.MessageTimeoutMs)}
	case *ps.CreateReq_Settings_MessageTimeoutTicks:
		return protoDuration{field: "message_timeout_ticks", set: true, n: v.MessageTimeoutTicks, ticks: true}
	}
	return protoDuration{}
}

func createCheckpointAfter(st *ps.CreateReq_Settings) protoDuration {
	switch v := st.GetCheckpointAfter().(type) {
	case *ps.CreateReq_Settings_CheckpointAfterMs:
		return protoDuration{field: "checkpoint_after_ms", set: true, n: int64(v.CheckpointAfterMs)}
	case *ps.CreateReq_Settings_CheckpointAfterTicks:
		return protoDuration{field: "checkpoint_after_ticks", set: true, n: v.CheckpointAfterTicks, ticks: true}
	}
	return protoDuration{}
}

func updateTimeout(st *ps.UpdateReq_Settings) protoDuration {
	switch v := st.GetMessageTimeout().(type) {
	case *ps.UpdateReq_Settings_MessageTimeoutMs:
		return protoDuration{field: "message_timeout_ms", set: true, n: int64(v.MessageTimeoutMs)}
	case *ps.UpdateReq_Settings_MessageTimeoutTicks:
		return protoDuration{field: "message_timeout_ticks", set: true, n: v.MessageTimeoutTicks, ticks: true}
	}
	return protoDuration{}
}

func updateCheckpointAfter(st *ps.UpdateReq_Settings) protoDuration {
	switch v := st.GetCheckpointAfter().(type) {
	case *ps.UpdateReq_Settings_CheckpointAfterMs:
		return protoDuration{field: "checkpoint_after_ms", set: true, n: int64(v.CheckpointAfterMs)}
	case *ps.UpdateReq_Settings_CheckpointAfterTicks:
		return protoDuration{field: "checkpoint_after_ticks", set: true, n: v.CheckpointAfterTicks, ticks: true}
	}
	return protoDuration{}
}

// createStrategy returns the strategy a Create asks for: consumer_strategy
// by name, or, when that is empty (clients before 21.10.1), the deprecated
// enum, whose zero is DispatchToSingle, as KurrentDB reads it.
func createStrategy(st *ps.CreateReq_Settings) (subscription.Strategy, error) {
	if name := st.GetConsumerStrategy(); name != "" {
		return subscription.ParseStrategy(name)
	}
	//lint:ignore SA1019 clients before 21.10.1 send only the enum
	v := int32(st.GetNamedConsumerStrategy())
	name, ok := ps.CreateReq_ConsumerStrategy_name[v]
	if !ok {
		return 0, invalidStrategyEnum(v)
	}
	return subscription.ParseStrategy(name)
}

// updateStrategy returns the strategy an Update asks for, which only the
// enum carries; its zero is DispatchToSingle, as KurrentDB reads it.
func updateStrategy(st *ps.UpdateReq_Settings) (subscription.Strategy, error) {
	v := int32(st.GetNamedConsumerStrategy())
	name, ok := ps.UpdateReq_ConsumerStrategy_name[v]
	if !ok {
		return 0, invalidStrategyEnum(v)
	}
	return subscription.ParseStrategy(name)
}

func invalidStrategyEnum(v int32) error {
	return invalidSetting("named_consumer_strategy", "unknown value %d; use 0 (DispatchToSingle), 1 (RoundRobin) or 2 (Pinned)", v)
}

// groupSettings checks the settings of a Create or Update and maps them
// onto the Manager's. The Manager checks what it keeps once more.
func groupSettings(st protoSettings, timeout, checkpointAfter protoDuration, strategy subscription.Strategy) (subscription.Settings, error) {
	for _, f := range []struct {
		field string
		n     int32
	}{
		{"max_retry_count", st.GetMaxRetryCount()},
		{"min_checkpoint_count", st.GetMinCheckpointCount()},
		{"max_checkpoint_count", st.GetMaxCheckpointCount()},
		{"max_subscriber_count", st.GetMaxSubscriberCount()},
		{"live_buffer_size", st.GetLiveBufferSize()},
		{"read_batch_size", st.GetReadBatchSize()},
		{"history_buffer_size", st.GetHistoryBufferSize()},
	} {
		if f.n < 0 {
			return subscription.Settings{}, invalidSetting(f.field, "must not be negative, got %d", f.n)
		}
	}
	if lo, hi := st.GetMinCheckpointCount(), st.GetMaxCheckpointCount(); hi > 0 && lo > hi {
		return subscription.Settings{}, invalidSetting("min_checkpoint_count", "%d is above max_checkpoint_count, %d", lo, hi)
	}
	for _, d := range []protoDuration{timeout, checkpointAfter} {
		if err := d.check(); err != nil {
			return subscription.Settings{}, err
		}
	}
	s := subscription.Settings{
		MaxRetryCount:      int(st.GetMaxRetryCount()),
		CheckpointAfter:    int(st.GetMinCheckpointCount()),
		MaxSubscriberCount: int(st.GetMaxSubscriberCount()),
		BufferSize:         int(st.GetHistoryBufferSize()),
		Strategy:           strategy,
		ResolveLinks:       st.GetResolveLinks(),
		LiveBufferSize:     int(st.GetLiveBufferSize()),
		ReadBatchSize:      int(st.GetReadBatchSize()),
		MaxCheckpointCount: int(st.GetMaxCheckpointCount()),
		CheckpointInterval: time.Duration(checkpointAfter.milliseconds()) * time.Millisecond,
		ExtraStatistics:    st.GetExtraStatistics(),
	}
	if s.MaxRetryCount == 0 {
		s.MaxRetryCount = -1 // the Manager's "none"; its zero is its default
	}
	if timeout.set {
		s.MessageTimeout = time.Duration(timeout.milliseconds()) * time.Millisecond
		if s.MessageTimeout == 0 {
			s.MessageTimeout = -1 // the Manager's "never"
		}
	}
	return s, nil
}

// invalidSetting refuses a setting of a Create or Update, named as the
// protocol names it.
func invalidSetting(field, format string, args ...any) error {
	err := &cairn.InvalidArgumentError{Field: "settings." + field, Reason: fmt.Sprintf(format, args...)}
	return status.Error(codes.InvalidArgument, err.Error())
}
