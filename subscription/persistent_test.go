package subscription_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/subscription"
	"github.com/google/uuid"
)

func newManager(t testing.TB, store *cairn.Store) *subscription.Manager {
	t.Helper()
	m, err := subscription.NewManager(store, subscription.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func connect(t testing.TB, ctx context.Context, m *subscription.Manager, stream, group string, opts subscription.ConsumerOptions) *subscription.Consumer {
	t.Helper()
	c, err := m.Connect(ctx, stream, group, opts)
	if err != nil {
		t.Fatalf("connect to %s on %s: %v", group, stream, err)
	}
	return c
}

func next(t testing.TB, ctx context.Context, c *subscription.Consumer) subscription.Delivery {
	t.Helper()
	d, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return d
}

func ack(t testing.TB, ctx context.Context, c *subscription.Consumer, d subscription.Delivery) {
	t.Helper()
	if err := c.Ack(ctx, d.Event.ID); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// TestPersistentResumesAfterRestart acks part of the log, restarts the store
// and checks that the group resumes exactly at its checkpoint: after a clean
// close at the first unacked event, after a crash (no close) at the last
// checkpoint written.
func TestPersistentResumesAfterRestart(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			ctx := deadline(t)
			f := eng.open(t)
			store, reopen := f.store, f.reopen
			for i := range 100 {
				mustAppend(t, store, fmt.Sprintf("s-%d", i%5), ev("E"))
			}
			m := newManager(t, store)
			if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{CheckpointAfter: 7}); err != nil {
				t.Fatal(err)
			}
			c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
			for i := range 60 {
				d := next(t, ctx, c)
				if d.Event.Position != uint64(i) {
					t.Fatalf("delivery %d at position %d", i, d.Event.Position)
				}
				ack(t, ctx, c, d)
			}
			// A clean close writes the checkpoint at the first unacked event.
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			store = reopen(t, store)
			m = newManager(t, store)
			info, err := m.Info(ctx, subscription.AllStream, "g")
			if err != nil {
				t.Fatal(err)
			}
			if info.Checkpoint != 60 {
				t.Fatalf("checkpoint after a clean close %d, want 60", info.Checkpoint)
			}
			if info.Settings.CheckpointAfter != 7 {
				t.Fatalf("settings after restart %+v, want CheckpointAfter 7", info.Settings)
			}
			c = connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
			for i := 60; i < 90; i++ {
				d := next(t, ctx, c)
				if d.Event.Position != uint64(i) {
					t.Fatalf("after restart: delivery at position %d, want %d", d.Event.Position, i)
				}
				ack(t, ctx, c, d)
			}
			// Crash: no close. The checkpoint is whatever was written last.
			info, err = m.Info(ctx, subscription.AllStream, "g")
			if err != nil {
				t.Fatal(err)
			}
			if info.Checkpoint < 60 || info.Checkpoint > 90 || info.Processed != 90 {
				t.Fatalf("before the crash: checkpoint %d, processed %d", info.Checkpoint, info.Processed)
			}
			store = reopen(t, store)
			m = newManager(t, store)
			c = connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
			for i := info.Checkpoint; i < 100; i++ {
				d := next(t, ctx, c)
				if d.Event.Position != i {
					t.Fatalf("after a crash: delivery at position %d, want %d", d.Event.Position, i)
				}
				ack(t, ctx, c, d)
			}
			// Parked events survive a restart too, and replay.
			mustAppend(t, store, "s-0", ev("Poison"))
			d := next(t, ctx, c)
			if err := c.Nack(ctx, subscription.Park, "bad data", d.Event.ID); err != nil {
				t.Fatal(err)
			}
			m.Close(ctx)
			store = reopen(t, store)
			m = newManager(t, store)
			if info, err = m.Info(ctx, subscription.AllStream, "g"); err != nil || info.Parked != 1 || info.Checkpoint != 101 {
				t.Fatalf("after restart: %d parked, checkpoint %d, %v; want 1 parked, checkpoint 101", info.Parked, info.Checkpoint, err)
			}
			if n, err := m.ReplayParked(ctx, subscription.AllStream, "g", 0); err != nil || n != 1 {
				t.Fatalf("replay: %d, %v", n, err)
			}
			c = connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
			r := next(t, ctx, c)
			if r.Event.ID != d.Event.ID || !r.Replayed {
				t.Fatalf("replayed %+v, want the parked event", r)
			}
			ack(t, ctx, c, r)
			if info, _ = m.Info(ctx, subscription.AllStream, "g"); info.Parked != 0 {
				t.Fatalf("%d parked after the replay was acked, want 0", info.Parked)
			}
			m.Close(ctx)
		})
	}
}

// TestPersistentSharedByConsumers runs three consumers of one group while
// writers append, and checks that every event is delivered to exactly one
// of them (nothing is nacked, so nothing is delivered twice).
func TestPersistentSharedByConsumers(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) { testSharedByConsumers(t, eng.open(t).store) })
	}
}

func testSharedByConsumers(t *testing.T, store *cairn.Store) {
	ctx := deadline(t)
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "workers", subscription.Settings{BufferSize: 16}); err != nil {
		t.Fatal(err)
	}
	const writers, appends = 4, 100
	var (
		mu   sync.Mutex
		seen = map[uint64]string{}
		wg   sync.WaitGroup
		errs = make(chan error, 16)
	)
	for i := range 3 {
		c := connect(t, ctx, m, subscription.AllStream, "workers", subscription.ConsumerOptions{Name: fmt.Sprint("c", i), InFlight: 1 + i})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := c.Next(ctx)
				if errors.Is(err, subscription.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if other, dup := seen[d.Event.Position]; dup {
					errs <- fmt.Errorf("position %d delivered to %s and %s", d.Event.Position, other, c.Name())
				}
				seen[d.Event.Position] = c.Name()
				done := len(seen) == writers*appends
				mu.Unlock()
				if err := c.Ack(ctx, d.Event.ID); err != nil {
					errs <- err
					return
				}
				if done {
					m.Close(ctx) // ends every consumer
				}
			}
		}()
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Add(1)
		go func() {
			defer ww.Done()
			for range appends {
				if _, err := store.Append(ctx, fmt.Sprint("w", w), cairn.Any, ev("E")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	ww.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for p := range uint64(writers * appends) {
		if _, ok := seen[p]; !ok {
			t.Fatalf("position %d never delivered", p)
		}
	}
}

// TestPersistentConsumersShare checks that an event held by one consumer
// goes to no other, and that a consumer at its in-flight limit leaves the
// next events to the others.
func TestPersistentConsumersShare(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	for range 3 {
		mustAppend(t, store, "s", ev("E"))
	}
	m := newManager(t, store)
	if err := m.Create(ctx, "s", "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	a := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{Name: "a", InFlight: 1})
	b := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{Name: "b", InFlight: 1})
	da, db := next(t, ctx, a), next(t, ctx, b)
	if da.Event.Version != 0 || db.Event.Version != 1 {
		t.Fatalf("a got version %d, b got %d; want 0 and 1", da.Event.Version, db.Event.Version)
	}
	// a is at its limit: Next waits until a answers.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	if _, err := a.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next at the in-flight limit: %v, want it to wait", err)
	}
	cancel()
	ack(t, ctx, a, da)
	d2 := next(t, ctx, a)
	if d2.Event.Version != 2 {
		t.Fatalf("a got version %d, want 2", d2.Event.Version)
	}
	ack(t, ctx, a, d2)
	// Answers for events a consumer does not hold are ignored.
	if err := a.Ack(ctx, uuid.New(), db.Event.ID); err != nil {
		t.Fatal(err)
	}
	// b leaves without answering: its event goes to a, as a retry.
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ctx, a); d.Event.ID != db.Event.ID || d.RetryCount != 1 {
		t.Fatalf("after b left, a got version %d retry %d; want b's event, retry 1", d.Event.Version, d.RetryCount)
	}
	info, _ := m.Info(ctx, "s", "g")
	if len(info.Consumers) != 1 || info.Consumers[0].Name != "a" {
		t.Fatalf("consumers %+v, want only a", info.Consumers)
	}
	if _, err := b.Next(ctx); !errors.Is(err, subscription.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestPersistentRetryParkReplay(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{MaxRetryCount: 2, CheckpointAfter: 1}); err != nil {
		t.Fatal(err)
	}
	poison := mustAppend(t, store, "s", ev("Poison"))
	mustAppend(t, store, "s", ev("Good"))
	c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{InFlight: 1})
	// Delivered, then retried twice, then parked.
	for want := range 3 {
		d := next(t, ctx, c)
		if d.Event.Position != poison.Position || d.RetryCount != want {
			t.Fatalf("delivery %d: position %d retry %d", want, d.Event.Position, d.RetryCount)
		}
		if err := c.Nack(ctx, subscription.Retry, "", d.Event.ID); err != nil {
			t.Fatal(err)
		}
	}
	d := next(t, ctx, c)
	if d.Event.Type != "Good" {
		t.Fatalf("after the retry limit got %s, want the next event", d.Event.Type)
	}
	ack(t, ctx, c, d)
	info, _ := m.Info(ctx, subscription.AllStream, "g")
	if info.Parked != 1 || info.Checkpoint != 2 {
		t.Fatalf("parked %d, checkpoint %d; want 1 parked and the checkpoint past both events", info.Parked, info.Checkpoint)
	}

	// Skip and park by the consumer.
	mustAppend(t, store, "s", ev("Skip"), ev("Park"))
	skip, park := next(t, ctx, c), subscription.Delivery{}
	if err := c.Nack(ctx, subscription.Skip, "", skip.Event.ID); err != nil {
		t.Fatal(err)
	}
	park = next(t, ctx, c)
	if err := c.Nack(ctx, subscription.Park, "cannot handle", park.Event.ID); err != nil {
		t.Fatal(err)
	}
	if info, _ = m.Info(ctx, subscription.AllStream, "g"); info.Parked != 2 || info.Checkpoint != 4 {
		t.Fatalf("parked %d, checkpoint %d; want 2 and 4", info.Parked, info.Checkpoint)
	}
	// The parked list, oldest first, with why each was parked.
	parked, total, err := m.Parked(ctx, subscription.AllStream, "g", 0)
	if err != nil || total != 2 || len(parked) != 2 {
		t.Fatalf("Parked: %d of %d, %v; want 2 of 2", len(parked), total, err)
	}
	if p := parked[0]; p.Stream != "s" || p.Version != 0 || p.Position != poison.Position || p.Reason != "retried 2 times" || p.Parked.IsZero() || p.Replaying {
		t.Errorf("first parked %+v, want the poison event, retried 2 times", p)
	}
	if p := parked[1]; p.ID != park.Event.ID || p.Version != 3 || p.Reason != "cannot handle" {
		t.Errorf("second parked %+v, want the event parked by the consumer, with its reason", p)
	}
	if first, total, err := m.Parked(ctx, subscription.AllStream, "g", 1); err != nil || total != 2 || len(first) != 1 || first[0].Position != poison.Position {
		t.Errorf("Parked with max 1: %+v of %d, %v; want the oldest of 2", first, total, err)
	}
	if _, _, err := m.Parked(ctx, subscription.AllStream, "nope", 0); !errors.Is(err, subscription.ErrGroupNotFound) {
		t.Errorf("Parked of an unknown group: %v, want ErrGroupNotFound", err)
	}

	// Replay one, nack it to park again; then replay all and ack them.
	if n, err := m.ReplayParked(ctx, subscription.AllStream, "g", 1); err != nil || n != 1 {
		t.Fatalf("replay 1: %d, %v", n, err)
	}
	r := next(t, ctx, c)
	if !r.Replayed || r.Event.Type != "Poison" || r.RetryCount != 0 {
		t.Fatalf("replayed %+v, want Poison first", r)
	}
	if parked, _, _ := m.Parked(ctx, subscription.AllStream, "g", 0); len(parked) != 2 || !parked[0].Replaying || parked[1].Replaying {
		t.Errorf("parked while one is replayed: %+v, want the first replaying", parked)
	}
	if err := c.Nack(ctx, subscription.Park, "still bad", r.Event.ID); err != nil {
		t.Fatal(err)
	}
	if info, _ = m.Info(ctx, subscription.AllStream, "g"); info.Parked != 2 {
		t.Fatalf("parked %d after parking a replay again, want 2", info.Parked)
	}
	if n, err := m.ReplayParked(ctx, subscription.AllStream, "g", 0); err != nil || n != 2 {
		t.Fatalf("replay all: %d, %v", n, err)
	}
	var types []string
	for range 2 {
		r := next(t, ctx, c)
		types = append(types, r.Event.Type)
		ack(t, ctx, c, r)
	}
	if fmt.Sprint(types) != "[Poison Park]" {
		t.Fatalf("replayed %v, want [Poison Park]", types)
	}
	if info, _ = m.Info(ctx, subscription.AllStream, "g"); info.Parked != 0 {
		t.Fatalf("parked %d after the replays were acked, want 0", info.Parked)
	}
}

func TestPersistentNoRetries(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	if err := m.Create(ctx, "s", "g", subscription.Settings{MaxRetryCount: -1}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "s", ev("Poison"), ev("Good"))
	c := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{InFlight: 1})
	d := next(t, ctx, c)
	if err := c.Nack(ctx, subscription.Retry, "", d.Event.ID); err != nil {
		t.Fatal(err)
	}
	if d := next(t, ctx, c); d.Event.Type != "Good" {
		t.Fatalf("got %s, want the event after the parked one", d.Event.Type)
	}
	info, _ := m.Info(ctx, "s", "g")
	if info.Parked != 1 || info.Settings.MaxRetryCount != -1 {
		t.Fatalf("parked %d, max retry count %d; want 1 and -1", info.Parked, info.Settings.MaxRetryCount)
	}
}

func TestPersistentMessageTimeout(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	if err := m.Create(ctx, "s", "g", subscription.Settings{MessageTimeout: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "s", ev("E"))
	c := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{})
	first := next(t, ctx, c)
	// Not answered: delivered again once the timeout passes.
	again := next(t, ctx, c)
	if again.Event.ID != first.Event.ID || again.RetryCount != 1 {
		t.Fatalf("got %+v, want the same event with retry count 1", again)
	}
	ack(t, ctx, c, again)
	if info, _ := m.Info(ctx, "s", "g"); info.Processed != 1 || info.InFlight != 0 {
		t.Fatalf("processed %d, in flight %d; want 1 and 0", info.Processed, info.InFlight)
	}
}

// TestPersistentUndeliveredNotRetried checks that only events a consumer's
// Next returned count a retry when they go to another consumer: events still
// waiting for Next when their consumer closes, or when it has not called
// Next within the message timeout, go back as they were, and a consumer that
// does not call Next is passed over.
func TestPersistentUndeliveredNotRetried(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	mustAppend(t, store, "s", ev("E"), ev("E"), ev("E"))
	m := newManager(t, store)
	for _, g := range []string{"close", "timeout"} {
		if err := m.Create(ctx, "s", g, subscription.Settings{MessageTimeout: 20 * time.Millisecond, Strategy: subscription.DispatchToSingle}); err != nil {
			t.Fatal(err)
		}
	}

	// a takes one of its three events and closes: b gets that one as a
	// retry, the other two as first deliveries.
	a := connect(t, ctx, m, "s", "close", subscription.ConsumerOptions{InFlight: 3})
	if d := next(t, ctx, a); d.Event.Version != 0 {
		t.Fatalf("a got version %d, want 0", d.Event.Version)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := connect(t, ctx, m, "s", "close", subscription.ConsumerOptions{InFlight: 3})
	for v := range 3 {
		d := next(t, ctx, b)
		want := 0
		if v == 0 {
			want = 1
		}
		if d.Event.Version != int64(v) || d.RetryCount != want {
			t.Fatalf("after a closed, b got version %d retry %d; want version %d retry %d", d.Event.Version, d.RetryCount, v, want)
		}
		ack(t, ctx, b, d)
	}

	// a never calls Next: once the timeout passes, the events assigned to
	// it go to b, none of them as a retry, and a gets no more although
	// DispatchToSingle prefers it.
	_ = connect(t, ctx, m, "s", "timeout", subscription.ConsumerOptions{InFlight: 3}) // a
	b = connect(t, ctx, m, "s", "timeout", subscription.ConsumerOptions{InFlight: 3})
	for v := range 3 {
		d := next(t, ctx, b)
		if d.Event.Version != int64(v) || d.RetryCount != 0 {
			t.Fatalf("b got version %d retry %d; want version %d retry 0", d.Event.Version, d.RetryCount, v)
		}
		ack(t, ctx, b, d)
	}
	if info, _ := m.Info(ctx, "s", "timeout"); info.Processed != 3 || info.InFlight != 0 {
		t.Fatalf("processed %d, in flight %d; want 3 and 0", info.Processed, info.InFlight)
	}
}

func TestPersistentAdministration(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	for i := range 5 {
		mustAppend(t, store, "orders", ev("E"))
		mustAppend(t, store, "other", ev("E"))
		_ = i
	}
	filter := subscription.Filter{StreamPrefixes: []string{"ord"}}
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{Filter: filter, Start: subscription.End}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "orders", "g", subscription.Settings{Start: subscription.At(3), MaxSubscriberCount: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, "orders", "g", subscription.Settings{}); !errors.Is(err, subscription.ErrGroupExists) {
		t.Fatalf("second create: %v", err)
	}
	list, err := m.List(ctx, "")
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d groups, %v", len(list), err)
	}
	if list, _ := m.List(ctx, "orders"); len(list) != 1 || list[0].Settings.Start != subscription.At(3) {
		t.Fatalf("list of orders: %+v", list)
	}
	// Start at End on $all: the group delivers what comes after Create.
	res := mustAppend(t, store, "orders", ev("New"))
	mustAppend(t, store, "other", ev("Filtered"))
	ca := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
	if d := next(t, ctx, ca); d.Event.Position != res.Position {
		t.Fatalf("$all group from End got position %d, want %d", d.Event.Position, res.Position)
	}
	// Start at version 3 on a stream, and the subscriber limit.
	cs := connect(t, ctx, m, "orders", "g", subscription.ConsumerOptions{})
	if d := next(t, ctx, cs); d.Event.Version != 3 {
		t.Fatalf("stream group from 3 got version %d", d.Event.Version)
	}
	if _, err := m.Connect(ctx, "orders", "g", subscription.ConsumerOptions{}); !errors.Is(err, subscription.ErrTooManyConsumers) {
		t.Fatalf("second consumer: %v", err)
	}
	// Update: new limits apply; the filter cannot change.
	if err := m.Update(ctx, "orders", "g", subscription.Settings{MaxSubscriberCount: 2, MaxRetryCount: 3}); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Info(ctx, "orders", "g"); info.Settings.MaxRetryCount != 3 {
		t.Fatalf("settings after update: %+v", info.Settings)
	}
	connect(t, ctx, m, "orders", "g", subscription.ConsumerOptions{})
	if err := m.Update(ctx, subscription.AllStream, "g", subscription.Settings{}); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("update of the filter: %v", err)
	}
	// Delete: a waiting consumer is told.
	waiting := make(chan error, 1)
	go func() {
		_, err := ca.Next(ctx)
		waiting <- err
	}()
	if err := m.Delete(ctx, subscription.AllStream, "g"); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, subscription.ErrGroupDeleted) {
		t.Fatalf("Next of a deleted group: %v", err)
	}
	for _, err := range []error{
		m.Delete(ctx, subscription.AllStream, "g"),
		m.Update(ctx, subscription.AllStream, "g", subscription.Settings{}),
		func() error { _, err := m.Info(ctx, subscription.AllStream, "g"); return err }(),
		func() error {
			_, err := m.Connect(ctx, subscription.AllStream, "g", subscription.ConsumerOptions{})
			return err
		}(),
	} {
		if !errors.Is(err, subscription.ErrGroupNotFound) {
			t.Fatalf("after delete: %v, want ErrGroupNotFound", err)
		}
	}
	// Created again: a fresh group.
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Info(ctx, subscription.AllStream, "g"); info.Checkpoint != 0 || info.Parked != 0 {
		t.Fatalf("re-created group: %+v", info)
	}
	// Bad input names the field.
	for _, c := range []struct {
		field string
		err   error
	}{
		{"group", m.Create(ctx, "orders", "", subscription.Settings{})},
		{"stream", m.Create(ctx, "bad\x01stream", "g", subscription.Settings{})},
		{"settings.buffer_size", m.Create(ctx, "orders", "h", subscription.Settings{BufferSize: -1})},
		{"filter.event_type_regexp", m.Create(ctx, "orders", "h", subscription.Settings{Filter: subscription.Filter{EventTypeRegexp: "["}})},
		{"settings.start", m.Create(ctx, "orders", "h", subscription.Settings{Start: subscription.At(math.MaxUint64)})},
		{"action", cs.Nack(ctx, subscription.Action(9), "", uuid.New())},
		{"in_flight", func() error {
			_, err := m.Connect(ctx, "orders", "g", subscription.ConsumerOptions{InFlight: -1})
			return err
		}()},
	} {
		var ia *cairn.InvalidArgumentError
		if !errors.As(c.err, &ia) || ia.Field != c.field {
			t.Errorf("got %v, want an invalid %s", c.err, c.field)
		}
	}
}

// TestPersistentCancelAndNoGoroutines checks that a waiting Next returns
// when its context is cancelled and when the Manager closes, and that the
// package leaves no goroutine behind.
func TestPersistentCancelAndNoGoroutines(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	before := runtime.NumGoroutine()
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
	call, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := c.Next(call); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Next: %v", err)
	}
	go func() { _, err := c.Next(ctx); errc <- err }()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, subscription.ErrClosed) {
		t.Fatalf("Next after the Manager closed: %v", err)
	}
	waitGoroutines(t, before)
}

func TestPersistentNeedsSnapshots(t *testing.T) {
	store := cairn.NewStore(noSnapshots{memstore.New()}, cairn.Options{})
	if _, err := subscription.NewManager(store, subscription.ManagerOptions{}); !errors.Is(err, cairn.ErrNotSupported) {
		t.Fatalf("got %v, want ErrNotSupported", err)
	}
}

// noSnapshots hides every optional capability of an engine.
type noSnapshots struct{ cairn.Backend }

// TestAnotherNodesCommits runs subscribers on one Store while writers append
// through another Store over the same data, as two application nodes share
// a PostgreSQL database: the subscribers learn of the commits through the
// engine's notifications and see every event once, in order.
func TestAnotherNodesCommits(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			f := eng.open(t)
			if f.node == nil {
				t.Skip("the engine serves one process")
			}
			ctx := deadline(t)
			reader, writer := f.store, f.node(t)
			m := newManager(t, reader)
			if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{}); err != nil {
				t.Fatal(err)
			}
			c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
			sub, err := subscription.All(ctx, reader, subscription.Start, subscription.Options{BufferSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			const writers, appends = 4, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range appends {
						if _, err := writer.Append(ctx, fmt.Sprint("node-", w), cairn.Any, ev("E")); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			for i := range uint64(writers * appends) {
				if m := nextEvent(t, ctx, sub); m.Position != i {
					t.Fatalf("catch-up: position %d, want %d", m.Position, i)
				}
				d := next(t, ctx, c)
				if d.Event.Position != i {
					t.Fatalf("persistent: position %d, want %d", d.Event.Position, i)
				}
				ack(t, ctx, c, d)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			m.Close(ctx)
		})
	}
}

// TestPersistentSlowConsumerBounded checks that a group whose consumer does
// not answer holds no more than its buffer, however long the log.
func TestPersistentSlowConsumerBounded(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	batch := make([]cairn.EventData, 100)
	for range 20 {
		for i := range batch {
			batch[i] = ev("E")
		}
		if _, err := store.Append(ctx, "s", cairn.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{BufferSize: 50, MessageTimeout: -1}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{InFlight: 10})
	for range 10 {
		next(t, ctx, c)
	}
	info, err := m.Info(ctx, subscription.AllStream, "g")
	if err != nil {
		t.Fatal(err)
	}
	if info.InFlight != 10 || info.Buffered+info.InFlight > 50 || info.ReadUpTo > 50 {
		t.Fatalf("in flight %d, buffered %d, read up to %d; want 10 in flight and at most 50 held", info.InFlight, info.Buffered, info.ReadUpTo)
	}
}

// TestPersistentSlowConsumerNotParked has one consumer take a sizeable
// fraction of the message timeout over each event, while its in-flight limit
// lets the group assign it more events than it can work through in one
// timeout. The timeout counts from when Next returns an event, so nothing
// times out, nothing is parked, and every event is delivered once, in order,
// and acked.
func TestPersistentSlowConsumerNotParked(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	const events = 20
	batch := make([]cairn.EventData, events)
	for i := range batch {
		batch[i] = ev("E")
	}
	if _, err := store.Append(ctx, "s", cairn.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, store)
	// Ten events assigned at once take the consumer 600 ms, more than the
	// timeout; each one alone takes 60 ms, well within it.
	settings := subscription.Settings{MessageTimeout: 400 * time.Millisecond, MaxRetryCount: 1}
	if err := m.Create(ctx, "s", "g", settings); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{InFlight: 10})
	var delivered []subscription.Delivery
	done := make(chan error, 1)
	go func() {
		for {
			d, err := c.Next(ctx)
			if err != nil {
				done <- err
				return
			}
			delivered = append(delivered, d)
			time.Sleep(60 * time.Millisecond) // the work
			if err := c.Ack(ctx, d.Event.ID); err != nil {
				done <- err
				return
			}
		}
	}()
	// Wait until every event is processed (acked or parked); the deadline
	// guards against a hang. Then closing the consumer ends its loop.
	var info subscription.Info
	for {
		var err error
		if info, err = m.Info(ctx, "s", "g"); err != nil {
			t.Fatal(err)
		}
		if info.Processed == events {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, subscription.ErrClosed) {
		t.Fatalf("consumer: %v", err)
	}
	if info.Parked != 0 || info.ParkedTotal != 0 {
		t.Errorf("%d events parked, want none", info.ParkedTotal)
	}
	if info.Acked != events {
		t.Errorf("%d events acked, want %d", info.Acked, events)
	}
	if len(delivered) != events {
		t.Errorf("%d deliveries, want %d", len(delivered), events)
	}
	for i, d := range delivered {
		if d.Event.Version != int64(i) || d.RetryCount != 0 {
			t.Fatalf("delivery %d: version %d, retry %d; want version %d, retry 0", i, d.Event.Version, d.RetryCount, i)
		}
	}
}

// TestPersistentRoundRobin checks that a group hands its events to its
// consumers in turn, in the order they connected.
func TestPersistentRoundRobin(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	if err := m.Create(ctx, "s", "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	const consumers, events = 3, 12
	owners := make([]string, events)
	var wg sync.WaitGroup
	errs := make(chan error, consumers)
	for i := range consumers {
		c := connect(t, ctx, m, "s", "g", subscription.ConsumerOptions{Name: fmt.Sprint("c", i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := c.Next(ctx)
				if errors.Is(err, subscription.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				owners[d.Event.Version] = c.Name()
				if err := c.Ack(ctx, d.Event.ID); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	batch := make([]cairn.EventData, events)
	for i := range batch {
		batch[i] = ev("E")
	}
	if _, err := store.Append(ctx, "s", cairn.NoStream, batch...); err != nil {
		t.Fatal(err)
	}
	// Wait until every event was acked; the deadline guards against a hang.
	for {
		info, err := m.Info(ctx, "s", "g")
		if err != nil {
			t.Fatal(err)
		}
		if info.Processed == events {
			break
		}
		time.Sleep(time.Millisecond)
	}
	m.Close(ctx)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for v, owner := range owners {
		if want := fmt.Sprint("c", v%consumers); owner != want {
			t.Fatalf("events went to %v, want c0, c1, c2 in turn", owners)
		}
	}
}

// TestPersistentConcurrentCreates creates groups from several goroutines
// through two Managers (on PostgreSQL, two nodes): the registry's
// compare-and-set keeps every group.
func TestPersistentConcurrentCreates(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) {
			ctx := deadline(t)
			f := eng.open(t)
			other := f.store
			if f.node != nil {
				other = f.node(t)
			}
			managers := []*subscription.Manager{newManager(t, f.store), newManager(t, other)}
			const n = 8
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := managers[i%2].Create(ctx, subscription.AllStream, fmt.Sprint("g", i), subscription.Settings{}); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for _, m := range managers {
				list, err := m.List(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				if len(list) != n {
					t.Fatalf("%d groups listed, want %d", len(list), n)
				}
			}
		})
	}
}

// TestPersistentStreamGroupBeforeTheStream creates a group on a stream that
// does not exist yet; it delivers the stream's events once written, and
// those of the stream recreated after a soft delete.
func TestPersistentStreamGroupBeforeTheStream(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	m := newManager(t, store)
	if err := m.Create(ctx, "later", "g", subscription.Settings{}); err != nil {
		t.Fatal(err)
	}
	c := connect(t, ctx, m, "later", "g", subscription.ConsumerOptions{})
	got := make(chan subscription.Delivery, 1)
	go func() {
		d, err := c.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	mustAppend(t, store, "other", ev("X"))
	mustAppend(t, store, "later", ev("First"))
	d := <-got
	if d.Event.Type != "First" || d.Event.Version != 0 {
		t.Fatalf("got %s@%d, want First@0", d.Event.Type, d.Event.Version)
	}
	ack(t, ctx, c, d)
	if err := store.DeleteStream(ctx, "later", cairn.Any); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, store, "later", ev("Again"))
	if d := next(t, ctx, c); d.Event.Type != "Again" || d.Event.Version != 1 {
		t.Fatalf("after recreation got %s@%d, want Again@1", d.Event.Type, d.Event.Version)
	}
}

// TestPersistentStrategies checks DispatchToSingle and Pinned: which
// consumer each event is handed to, before any is answered.
func TestPersistentStrategies(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	for i := range 12 {
		mustAppend(t, store, fmt.Sprint("s-", i%4), ev("E"))
	}
	m := newManager(t, store)
	handed := func(group string, strategy subscription.Strategy) map[string][]cairn.Event {
		t.Helper()
		if err := m.Create(ctx, subscription.AllStream, group, subscription.Settings{Strategy: strategy}); err != nil {
			t.Fatal(err)
		}
		var cs []*subscription.Consumer
		for i := range 3 {
			cs = append(cs, connect(t, ctx, m, subscription.AllStream, group, subscription.ConsumerOptions{Name: fmt.Sprint("c", i), InFlight: 5}))
		}
		// The first Next reads the log and hands out what it can.
		out := map[string][]cairn.Event{}
		d := next(t, ctx, cs[0])
		out["c0"] = append(out["c0"], d.Event)
		for _, c := range cs {
			for {
				info, _ := m.Info(ctx, subscription.AllStream, group)
				if info.InFlight == 0 || len(out[c.Name()]) == consumerHeld(info, c.Name()) {
					break
				}
				d := next(t, ctx, c)
				out[c.Name()] = append(out[c.Name()], d.Event)
			}
		}
		if info, _ := m.Info(ctx, subscription.AllStream, group); info.Settings.Strategy != strategy {
			t.Fatalf("stored strategy %v, want %v", info.Settings.Strategy, strategy)
		}
		return out
	}

	single := handed("single", subscription.DispatchToSingle)
	if len(single["c0"]) != 5 || len(single["c1"]) != 5 || len(single["c2"]) != 2 {
		t.Fatalf("DispatchToSingle handed %d, %d, %d events; want 5, 5, 2", len(single["c0"]), len(single["c1"]), len(single["c2"]))
	}

	pinned := handed("pinned", subscription.Pinned)
	owner := map[string]string{}
	for c, events := range pinned {
		for _, e := range events {
			if o, ok := owner[e.StreamID]; ok && o != c {
				t.Fatalf("stream %s handed to %s and %s", e.StreamID, o, c)
			}
			owner[e.StreamID] = c
		}
	}

	if _, err := subscription.ParseStrategy("Pinned"); err != nil {
		t.Fatal(err)
	}
	if _, err := subscription.ParseStrategy("Fastest"); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Fatalf("unknown strategy: %v", err)
	}
}

func consumerHeld(info subscription.Info, name string) int {
	for _, c := range info.Consumers {
		if c.Name == name {
			return c.InFlight
		}
	}
	return 0
}

// TestPinnedByCorrelation checks that the group hands every event of a
// correlation id ("$correlationId" in the metadata) to one consumer,
// whatever its stream, and an event without one by its stream, as Pinned.
func TestPinnedByCorrelation(t *testing.T) {
	ctx := deadline(t)
	store := memstore.Open()
	for i := range 24 {
		e := ev("E")
		if i%3 != 0 { // one in three has no correlation id
			e.Metadata = fmt.Appendf(nil, `{"$correlationId":"saga-%d","other":1}`, i%5)
		}
		mustAppend(t, store, fmt.Sprint("s-", i%7), e)
	}
	m := newManager(t, store)
	if err := m.Create(ctx, subscription.AllStream, "g", subscription.Settings{Strategy: subscription.PinnedByCorrelation}); err != nil {
		t.Fatal(err)
	}
	var cs []*subscription.Consumer
	for i := range 3 {
		cs = append(cs, connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{Name: fmt.Sprint("c", i), InFlight: 24}))
	}
	owner := map[string]string{}
	used := map[string]bool{}
	take := func(c *subscription.Consumer) {
		t.Helper()
		d := next(t, ctx, c)
		key := "stream " + d.Event.StreamID
		var meta map[string]any
		if json.Unmarshal(d.Event.Metadata, &meta) == nil && meta["$correlationId"] != nil {
			key = fmt.Sprint("correlation ", meta["$correlationId"])
		}
		if o, ok := owner[key]; ok && o != c.Name() {
			t.Fatalf("%s handed to %s and %s", key, o, c.Name())
		}
		owner[key] = c.Name()
		used[c.Name()] = true
	}
	// The first Next reads the log and hands every event out; then each
	// consumer takes what it holds.
	take(cs[0])
	seen := 1
	for _, c := range cs {
		info, err := m.Info(ctx, subscription.AllStream, "g")
		if err != nil {
			t.Fatal(err)
		}
		held := consumerHeld(info, c.Name())
		if c == cs[0] {
			held-- // the one taken
		}
		for range held {
			take(c)
			seen++
		}
	}
	if seen != 24 {
		t.Fatalf("handed %d events, want 24", seen)
	}
	if len(used) < 2 {
		t.Errorf("every event went to %v: the correlation ids spread over the consumers", used)
	}
}
