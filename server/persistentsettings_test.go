package server_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cairndb/cairn/server"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	ps "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/persistent"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcCode returns the gRPC code of an error, also when the official client
// wraps it in its own error.
func grpcCode(err error) codes.Code {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return status.Code(err)
}

// wantInvalid fails unless err is InvalidArgument and its message names the
// setting.
func wantInvalid(t *testing.T, err error, setting string) {
	t.Helper()
	if grpcCode(err) != codes.InvalidArgument || !strings.Contains(err.Error(), setting) {
		t.Fatalf("got %v, want InvalidArgument naming %s", err, setting)
	}
}

// rawPersistent returns a client of the persistent subscriptions service for
// requests the official client cannot make.
func rawPersistent(t *testing.T, ts *testServer) ps.PersistentSubscriptionsClient {
	t.Helper()
	return ps.NewPersistentSubscriptionsClient(ts.conn(t))
}

func streamID(name string) *shared.StreamIdentifier {
	return &shared.StreamIdentifier{StreamName: []byte(name)}
}

// TestPersistentSettingsOutOfRangeRefused creates and updates groups with
// each setting out of its range, through the official client, and checks
// that each is refused with InvalidArgument naming the setting, that no
// group is created and that an updated group keeps its settings.
func TestPersistentSettingsOutOfRangeRefused(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	kept := kurrentdb.SubscriptionSettingsDefault()
	kept.MaxRetryCount, kept.HistoryBufferSize = 3, 40
	if err := c.CreatePersistentSubscription(ctx, "orders", "kept", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &kept}); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetPersistentSubscriptionInfo(ctx, "orders", "kept", kurrentdb.GetPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		change  func(s *kurrentdb.PersistentSubscriptionSettings)
		setting string
		says    string // part of the message
		noUpd   bool   // the client cannot send it in an update
	}{
		{"unknown strategy name", func(s *kurrentdb.PersistentSubscriptionSettings) { s.ConsumerStrategyName = "Fastest" }, "settings.consumer_strategy", "RoundRobin, DispatchToSingle, Pinned or PinnedByCorrelation", true},
		{"strategy name in lower case", func(s *kurrentdb.PersistentSubscriptionSettings) { s.ConsumerStrategyName = "pinned" }, "settings.consumer_strategy", "unknown strategy", true},
		{"negative max retry count", func(s *kurrentdb.PersistentSubscriptionSettings) { s.MaxRetryCount = -1 }, "settings.max_retry_count", "negative", false},
		{"negative min checkpoint count", func(s *kurrentdb.PersistentSubscriptionSettings) { s.CheckpointLowerBound = -1 }, "settings.min_checkpoint_count", "negative", false},
		{"negative max checkpoint count", func(s *kurrentdb.PersistentSubscriptionSettings) { s.CheckpointUpperBound = -1 }, "settings.max_checkpoint_count", "negative", false},
		{"min checkpoint count above the max", func(s *kurrentdb.PersistentSubscriptionSettings) {
			s.CheckpointLowerBound, s.CheckpointUpperBound = 100, 10
		}, "settings.min_checkpoint_count", "above max_checkpoint_count", false},
		{"negative max subscriber count", func(s *kurrentdb.PersistentSubscriptionSettings) { s.MaxSubscriberCount = -1 }, "settings.max_subscriber_count", "negative", false},
		{"negative live buffer size", func(s *kurrentdb.PersistentSubscriptionSettings) { s.LiveBufferSize = -1 }, "settings.live_buffer_size", "negative", false},
		{"negative read batch size", func(s *kurrentdb.PersistentSubscriptionSettings) { s.ReadBatchSize = -1 }, "settings.read_batch_size", "negative", false},
		{"negative history buffer size", func(s *kurrentdb.PersistentSubscriptionSettings) { s.HistoryBufferSize = -1 }, "settings.history_buffer_size", "negative", false},
		{"negative message timeout", func(s *kurrentdb.PersistentSubscriptionSettings) { s.MessageTimeout = -1 }, "settings.message_timeout_ms", "negative", false},
		{"negative checkpoint after", func(s *kurrentdb.PersistentSubscriptionSettings) { s.CheckpointAfter = -1 }, "settings.checkpoint_after_ms", "negative", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := kurrentdb.SubscriptionSettingsDefault()
			tc.change(&s)
			err := c.CreatePersistentSubscription(ctx, "orders", "new", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &s})
			wantInvalid(t, err, tc.setting)
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("create: %v, want it to say %q", err, tc.says)
			}
			if _, err := c.GetPersistentSubscriptionInfo(ctx, "orders", "new", kurrentdb.GetPersistentSubscriptionOptions{}); errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
				t.Fatalf("after a refused create: %v, want ErrorCodeResourceNotFound", err)
			}
			err = c.CreatePersistentSubscriptionToAll(ctx, "new", kurrentdb.PersistentAllSubscriptionOptions{Settings: &s})
			wantInvalid(t, err, tc.setting)
			if _, err := c.GetPersistentSubscriptionInfoToAll(ctx, "new", kurrentdb.GetPersistentSubscriptionOptions{}); errorCode(err) != kurrentdb.ErrorCodeResourceNotFound {
				t.Fatalf("after a refused create on $all: %v, want ErrorCodeResourceNotFound", err)
			}
			if tc.noUpd {
				return // the client panics on a strategy it cannot map to the update's enum
			}
			err = c.UpdatePersistentSubscription(ctx, "orders", "kept", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &s})
			wantInvalid(t, err, tc.setting)
			after, err := c.GetPersistentSubscriptionInfo(ctx, "orders", "kept", kurrentdb.GetPersistentSubscriptionOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *after.Settings != *before.Settings {
				t.Fatalf("a refused update changed the settings from %+v to %+v", *before.Settings, *after.Settings)
			}
		})
	}

	t.Run("position with prepare beyond commit", func(t *testing.T) {
		err := c.CreatePersistentSubscriptionToAll(ctx, "new", kurrentdb.PersistentAllSubscriptionOptions{StartFrom: kurrentdb.Position{Commit: 0, Prepare: 5}})
		wantInvalid(t, err, "prepare position")
	})
	t.Run("replay with a negative stop", func(t *testing.T) {
		err := c.ReplayParkedMessages(ctx, "orders", "kept", kurrentdb.ReplayParkedMessagesOptions{StopAt: -1})
		wantInvalid(t, err, "options.stop_at")
	})
}

// TestPersistentSettingsOutOfRangeRefusedRaw sends the out-of-range values
// the official client cannot send: unknown enum values, durations in ticks,
// a filter with both an expression and prefixes.
func TestPersistentSettingsOutOfRangeRefusedRaw(t *testing.T) {
	ts := start(t, server.Options{})
	ctx := context.Background()
	raw := rawPersistent(t, ts)
	valid := func() *ps.CreateReq_Settings {
		return &ps.CreateReq_Settings{ConsumerStrategy: "RoundRobin", MaxRetryCount: 3, HistoryBufferSize: 40}
	}
	create := func(st *ps.CreateReq_Settings) *ps.CreateReq {
		return &ps.CreateReq{Options: &ps.CreateReq_Options{
			StreamOption: &ps.CreateReq_Options_Stream{Stream: &ps.CreateReq_StreamOptions{
				StreamIdentifier: streamID("orders"),
				RevisionOption:   &ps.CreateReq_StreamOptions_Start{Start: &shared.Empty{}},
			}},
			GroupName: "new",
			Settings:  st,
		}}
	}
	update := func(st *ps.UpdateReq_Settings) *ps.UpdateReq {
		return &ps.UpdateReq{Options: &ps.UpdateReq_Options{
			StreamOption: &ps.UpdateReq_Options_Stream{Stream: &ps.UpdateReq_StreamOptions{StreamIdentifier: streamID("orders")}},
			GroupName:    "kept",
			Settings:     st,
		}}
	}
	if _, err := raw.Create(ctx, &ps.CreateReq{Options: &ps.CreateReq_Options{
		StreamOption: &ps.CreateReq_Options_Stream{Stream: &ps.CreateReq_StreamOptions{StreamIdentifier: streamID("orders")}},
		GroupName:    "kept",
		Settings:     valid(),
	}}); err != nil {
		t.Fatal(err)
	}
	info := func() *ps.SubscriptionInfo {
		t.Helper()
		resp, err := raw.GetInfo(ctx, &ps.GetInfoReq{Options: &ps.GetInfoReq_Options{
			StreamOption: &ps.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: streamID("orders")},
			GroupName:    "kept",
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetSubscriptionInfo()
	}
	before := info()

	for _, tc := range []struct {
		name    string
		create  func(st *ps.CreateReq_Settings)
		setting string
	}{
		{"unknown strategy enum", func(st *ps.CreateReq_Settings) {
			//lint:ignore SA1019 the enum that clients before 21.10.1 send
			st.ConsumerStrategy, st.NamedConsumerStrategy = "", ps.CreateReq_ConsumerStrategy(7)
		}, "settings.named_consumer_strategy"},
		{"negative message timeout in ticks", func(st *ps.CreateReq_Settings) {
			st.MessageTimeout = &ps.CreateReq_Settings_MessageTimeoutTicks{MessageTimeoutTicks: -1}
		}, "settings.message_timeout_ticks"},
		{"message timeout under a millisecond", func(st *ps.CreateReq_Settings) {
			st.MessageTimeout = &ps.CreateReq_Settings_MessageTimeoutTicks{MessageTimeoutTicks: 5000}
		}, "settings.message_timeout_ticks"},
		{"message timeout longer than cairn keeps", func(st *ps.CreateReq_Settings) {
			st.MessageTimeout = &ps.CreateReq_Settings_MessageTimeoutTicks{MessageTimeoutTicks: math.MaxInt64}
		}, "settings.message_timeout_ticks"},
		{"negative checkpoint after in ticks", func(st *ps.CreateReq_Settings) {
			st.CheckpointAfter = &ps.CreateReq_Settings_CheckpointAfterTicks{CheckpointAfterTicks: -1}
		}, "settings.checkpoint_after_ticks"},
	} {
		t.Run("create: "+tc.name, func(t *testing.T) {
			st := valid()
			tc.create(st)
			_, err := raw.Create(ctx, create(st))
			wantInvalid(t, err, tc.setting)
			_, err = raw.GetInfo(ctx, &ps.GetInfoReq{Options: &ps.GetInfoReq_Options{
				StreamOption: &ps.GetInfoReq_Options_StreamIdentifier{StreamIdentifier: streamID("orders")},
				GroupName:    "new",
			}})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("after a refused create: %v, want NotFound", err)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		settings *ps.UpdateReq_Settings
		setting  string
	}{
		{"unknown strategy enum", &ps.UpdateReq_Settings{NamedConsumerStrategy: ps.UpdateReq_ConsumerStrategy(-1)}, "settings.named_consumer_strategy"},
		{"message timeout under a millisecond", &ps.UpdateReq_Settings{
			NamedConsumerStrategy: ps.UpdateReq_RoundRobin,
			MessageTimeout:        &ps.UpdateReq_Settings_MessageTimeoutTicks{MessageTimeoutTicks: 9999},
		}, "settings.message_timeout_ticks"},
		{"negative checkpoint after in ticks", &ps.UpdateReq_Settings{
			NamedConsumerStrategy: ps.UpdateReq_RoundRobin,
			CheckpointAfter:       &ps.UpdateReq_Settings_CheckpointAfterTicks{CheckpointAfterTicks: -10_000},
		}, "settings.checkpoint_after_ticks"},
		{"negative history buffer size", &ps.UpdateReq_Settings{NamedConsumerStrategy: ps.UpdateReq_RoundRobin, HistoryBufferSize: -1}, "settings.history_buffer_size"},
	} {
		t.Run("update: "+tc.name, func(t *testing.T) {
			_, err := raw.Update(ctx, update(tc.settings))
			wantInvalid(t, err, tc.setting)
			if after := info(); after.String() != before.String() {
				t.Fatalf("a refused update changed the group from %v to %v", before, after)
			}
		})
	}

	t.Run("filter with an expression and prefixes", func(t *testing.T) {
		_, err := raw.Create(ctx, &ps.CreateReq{Options: &ps.CreateReq_Options{
			StreamOption: &ps.CreateReq_Options_All{All: &ps.CreateReq_AllOptions{
				AllOption: &ps.CreateReq_AllOptions_Start{Start: &shared.Empty{}},
				FilterOption: &ps.CreateReq_AllOptions_Filter{Filter: &ps.CreateReq_AllOptions_FilterOptions{
					Filter: &ps.CreateReq_AllOptions_FilterOptions_StreamIdentifier{StreamIdentifier: &ps.CreateReq_AllOptions_FilterOptions_Expression{
						Regex: "^order-", Prefix: []string{"user-"},
					}},
				}},
			}},
			GroupName: "new",
			Settings:  valid(),
		}})
		wantInvalid(t, err, "not both")
	})
}

// TestPersistentReadOptionsOutOfRangeRefused checks the options of a
// consumer and its nacks: a buffer size below one, a read without a stream,
// an unknown nack action.
func TestPersistentReadOptionsOutOfRangeRefused(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(2, "Job")...); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePersistentSubscription(ctx, "jobs", "workers", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}}); err != nil {
		t.Fatal(err)
	}

	t.Run("buffer size -1", func(t *testing.T) {
		// The client's uint32 travels as the protocol's int32: -1.
		sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "workers", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: math.MaxUint32})
		if err == nil {
			sub.Close()
		}
		wantInvalid(t, err, "options.buffer_size")
	})

	raw := rawPersistent(t, ts)
	read := func(t *testing.T, o *ps.ReadReq_Options) error {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		rs, err := raw.Read(rctx)
		if err != nil {
			return err
		}
		if err := rs.Send(&ps.ReadReq{Content: &ps.ReadReq_Options_{Options: o}}); err != nil {
			return err
		}
		_, err = rs.Recv()
		return err
	}
	t.Run("buffer size 0", func(t *testing.T) {
		err := read(t, &ps.ReadReq_Options{StreamOption: &ps.ReadReq_Options_StreamIdentifier{StreamIdentifier: streamID("jobs")}, GroupName: "workers"})
		wantInvalid(t, err, "options.buffer_size")
	})
	t.Run("no stream", func(t *testing.T) {
		err := read(t, &ps.ReadReq_Options{GroupName: "workers", BufferSize: 10})
		wantInvalid(t, err, "options.stream_option")
	})

	t.Run("unknown nack action", func(t *testing.T) {
		sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "workers", kurrentdb.SubscribeToPersistentSubscriptionOptions{BufferSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		e := recvPersistent(t, sub)
		if err := sub.Nack("?", kurrentdb.NackAction(9), e.Event); err != nil {
			t.Fatal(err)
		}
		m := sub.Recv()
		if m.SubscriptionDropped == nil {
			t.Fatalf("after a nack with action 9 the consumer got %+v, want the subscription dropped", m.EventAppeared)
		}
		wantInvalid(t, m.SubscriptionDropped.Error, "nack.action")
	})
}

// TestPersistentSettingsKept checks that settings within range are kept as
// asked, not replaced: each strategy cairn implements, no retries, no
// message timeout.
func TestPersistentSettingsKept(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	infoOf := func(group string) *kurrentdb.PersistentSubscriptionSettings {
		t.Helper()
		info, err := c.GetPersistentSubscriptionInfo(ctx, "orders", group, kurrentdb.GetPersistentSubscriptionOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return info.Settings
	}
	for _, strategy := range []kurrentdb.ConsumerStrategy{kurrentdb.ConsumerStrategyRoundRobin, kurrentdb.ConsumerStrategyDispatchToSingle, kurrentdb.ConsumerStrategyPinned, kurrentdb.ConsumerStrategyPinnedByCorrelation} {
		s := kurrentdb.SubscriptionSettingsDefault()
		s.ConsumerStrategyName = strategy
		if err := c.CreatePersistentSubscription(ctx, "orders", string(strategy), kurrentdb.PersistentStreamSubscriptionOptions{Settings: &s}); err != nil {
			t.Fatalf("create with %s: %v", strategy, err)
		}
		if got := infoOf(string(strategy)).ConsumerStrategyName; got != strategy {
			t.Errorf("created with %s, the group reports %s", strategy, got)
		}
	}
	s := kurrentdb.SubscriptionSettingsDefault()
	s.ConsumerStrategyName = kurrentdb.ConsumerStrategyDispatchToSingle
	if err := c.UpdatePersistentSubscription(ctx, "orders", string(kurrentdb.ConsumerStrategyPinned), kurrentdb.PersistentStreamSubscriptionOptions{Settings: &s}); err != nil {
		t.Fatal(err)
	}
	if got := infoOf(string(kurrentdb.ConsumerStrategyPinned)).ConsumerStrategyName; got != kurrentdb.ConsumerStrategyDispatchToSingle {
		t.Errorf("updated to DispatchToSingle, the group reports %s", got)
	}

	s = kurrentdb.SubscriptionSettingsDefault()
	s.MaxRetryCount, s.MessageTimeout = 0, 0
	if err := c.CreatePersistentSubscription(ctx, "orders", "zeros", kurrentdb.PersistentStreamSubscriptionOptions{Settings: &s}); err != nil {
		t.Fatal(err)
	}
	if got := infoOf("zeros"); got.MaxRetryCount != 0 || got.MessageTimeout != 0 {
		t.Errorf("created with no retries and no timeout, the group reports %d retries and a timeout of %d ms", got.MaxRetryCount, got.MessageTimeout)
	}
}

// TestPersistentNoRetriesParks checks that a group created with a max retry
// count of 0 parks an event on its first nack with retry, rather than
// retrying it the default ten times.
func TestPersistentNoRetriesParks(t *testing.T) {
	ts := start(t, server.Options{})
	c := ts.client(t)
	ctx := context.Background()
	if _, err := c.AppendToStream(ctx, "jobs", kurrentdb.AppendToStreamOptions{}, events(1, "Job")...); err != nil {
		t.Fatal(err)
	}
	s := kurrentdb.SubscriptionSettingsDefault()
	s.MaxRetryCount = 0
	if err := c.CreatePersistentSubscription(ctx, "jobs", "once", kurrentdb.PersistentStreamSubscriptionOptions{StartFrom: kurrentdb.Start{}, Settings: &s}); err != nil {
		t.Fatal(err)
	}
	sub, err := c.SubscribeToPersistentSubscription(ctx, "jobs", "once", kurrentdb.SubscribeToPersistentSubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	e := recvPersistent(t, sub)
	if err := sub.Nack("failed", kurrentdb.NackActionRetry, e.Event); err != nil {
		t.Fatal(err)
	}
	waitParked(t, c, "jobs", "once", 1)
}
