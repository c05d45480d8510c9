package subscription_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
)

// TestSettingsOutOfRangeRefused checks that Create and Update refuse every
// setting out of its range with an error naming it, and write nothing: no
// group is created, and an updated group keeps its settings. No value is
// replaced by another.
func TestSettingsOutOfRangeRefused(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	kept := subscription.Settings{MaxRetryCount: 4, MessageTimeout: time.Second, BufferSize: 40, CheckpointAfter: 3, MaxSubscriberCount: 2, Strategy: subscription.Pinned}
	if err := m.Create(ctx, "orders", "kept", kept); err != nil {
		t.Fatal(err)
	}
	before, err := m.Info(ctx, "orders", "kept")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		settings subscription.Settings
		field    string
	}{
		{"negative buffer size", subscription.Settings{BufferSize: -1}, "settings.buffer_size"},
		{"negative checkpoint after", subscription.Settings{CheckpointAfter: -1}, "settings.checkpoint_after"},
		{"negative max subscriber count", subscription.Settings{MaxSubscriberCount: -1}, "settings.max_subscriber_count"},
		{"message timeout under a millisecond", subscription.Settings{MessageTimeout: 500 * time.Microsecond}, "settings.message_timeout"},
		{"message timeout of one nanosecond", subscription.Settings{MessageTimeout: 1}, "settings.message_timeout"},
		{"unknown strategy", subscription.Settings{Strategy: subscription.Strategy(7)}, "settings.consumer_strategy"},
		{"bad filter", subscription.Settings{Filter: subscription.Filter{StreamRegexp: "("}}, "filter.stream_regexp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid := func(op string, err error) {
				t.Helper()
				var ia *cairn.InvalidArgumentError
				if !errors.As(err, &ia) || ia.Field != tc.field {
					t.Fatalf("%s: %v, want an invalid %s", op, err, tc.field)
				}
			}
			wantInvalid("Validate", tc.settings.Validate())
			wantInvalid("Create", m.Create(ctx, "orders", "new", tc.settings))
			if _, err := m.Info(ctx, "orders", "new"); !errors.Is(err, subscription.ErrGroupNotFound) {
				t.Fatalf("after a refused create: %v, want ErrGroupNotFound", err)
			}
			if tc.field == "filter.stream_regexp" {
				return // an update cannot change the filter at all
			}
			wantInvalid("Update", m.Update(ctx, "orders", "kept", tc.settings))
			after, err := m.Info(ctx, "orders", "kept")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(after.Settings, before.Settings) {
				t.Fatalf("a refused update changed the settings from %+v to %+v", before.Settings, after.Settings)
			}
		})
	}
	if err := (subscription.Settings{MessageTimeout: time.Millisecond}).Validate(); err != nil {
		t.Errorf("a message timeout of 1ms: %v", err)
	}
	if err := (subscription.Settings{MessageTimeout: -1, MaxRetryCount: -1}).Validate(); err != nil {
		t.Errorf("no timeout and no retries: %v", err)
	}
}

// TestParseStrategy checks the names of the strategies cairn implements, and
// that the protocol's other strategies and unknown names are refused with a
// message that lists the strategies there are.
func TestParseStrategy(t *testing.T) {
	for name, want := range map[string]subscription.Strategy{
		"RoundRobin":          subscription.RoundRobin,
		"DispatchToSingle":    subscription.DispatchToSingle,
		"Pinned":              subscription.Pinned,
		"PinnedByCorrelation": subscription.PinnedByCorrelation,
	} {
		if got, err := subscription.ParseStrategy(name); err != nil || got != want {
			t.Errorf("ParseStrategy(%q) = %v, %v", name, got, err)
		}
		if want.String() != name {
			t.Errorf("%v.String() = %q", want, want.String())
		}
	}
	for name, says := range map[string]string{
		"Fastest":    `unknown strategy "Fastest"`,
		"roundrobin": `unknown strategy "roundrobin"`,
		"":           `unknown strategy ""`,
	} {
		_, err := subscription.ParseStrategy(name)
		var ia *cairn.InvalidArgumentError
		if !errors.As(err, &ia) || ia.Field != "settings.consumer_strategy" {
			t.Errorf("ParseStrategy(%q) = %v, want an invalid settings.consumer_strategy", name, err)
			continue
		}
		if !strings.Contains(err.Error(), says) || !strings.Contains(err.Error(), "RoundRobin, DispatchToSingle, Pinned or PinnedByCorrelation") {
			t.Errorf("ParseStrategy(%q) says %q, want it to say %q and list the strategies", name, err, says)
		}
	}
}

// TestStoredUnknownStrategyRefused checks that a group whose stored
// strategy this version does not implement (written by another version) is
// refused, not served with another strategy.
func TestStoredUnknownStrategyRefused(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	if err := newManager(t, store).Create(ctx, "orders", "g", subscription.Settings{Strategy: subscription.Pinned}); err != nil {
		t.Fatal(err)
	}
	snap := store.Backend().(cairn.Snapshotter)
	reg, ok, err := snap.GetSnapshot(ctx, "$subscriptions", -1, math.MaxInt64)
	if err != nil || !ok {
		t.Fatalf("registry: %v, %v", ok, err)
	}
	data := bytes.Replace(reg.Data, []byte(`"consumer_strategy":"Pinned"`), []byte(`"consumer_strategy":"PinnedByPartition"`), 1)
	if bytes.Equal(data, reg.Data) {
		t.Fatalf("the registry holds no strategy: %s", reg.Data)
	}
	if err := snap.CommitSnapshot(ctx, cairn.Snapshot{StreamID: reg.StreamID, Version: reg.Version + 1, Data: data}); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, store)
	if _, err := m.Connect(ctx, "orders", "g", subscription.ConsumerOptions{}); !errors.Is(err, cairn.ErrNotSupported) || !strings.Contains(err.Error(), "PinnedByPartition") {
		t.Fatalf("connect to a group with a strategy cairn lacks: %v, want ErrNotSupported naming it", err)
	}
	if _, err := m.Info(ctx, "orders", "g"); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("info of a group with a strategy cairn lacks: %v, want ErrNotSupported", err)
	}
}
