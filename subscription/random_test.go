package subscription_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/subscription"
)

// TestPersistentRandomAnswers drives a group with consumers that ack, retry,
// skip, park and walk away at random, while writers append, and checks what
// at-least-once promises: every event ends acked, skipped or parked; the
// parked ones replay; the checkpoint never passes the first unprocessed
// event; and after a restart the group resumes after the last event.
func TestPersistentRandomAnswers(t *testing.T) {
	for _, eng := range engines() {
		t.Run(eng.name, func(t *testing.T) { testRandomAnswers(t, eng.open(t), -1) })
	}
	// With a message timeout so short that events held by slow consumers
	// time out too.
	t.Run("memory/timeouts", func(t *testing.T) { testRandomAnswers(t, openMemory(t), time.Millisecond) })
}

func testRandomAnswers(t *testing.T, f fixture, timeout time.Duration) {
	ctx := deadline(t)
	store := f.store
	m := newManager(t, store)
	settings := subscription.Settings{MaxRetryCount: 2, BufferSize: 20, CheckpointAfter: 1, MessageTimeout: timeout}
	if err := m.Create(ctx, subscription.AllStream, "g", settings); err != nil {
		t.Fatal(err)
	}
	const total = 600

	var (
		mu        sync.Mutex
		processed = map[uint64]string{} // position → "ack" or "skip"
		parkedBy  = map[uint64]bool{}   // parked by a consumer's nack
		errs      = make(chan error, 8)
		wg        sync.WaitGroup
	)
	run, stop := context.WithCancel(ctx)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for run.Err() == nil {
				c, err := m.Connect(ctx, subscription.AllStream, "g", subscription.ConsumerOptions{InFlight: 1 + rng.IntN(4)})
				if err != nil {
					errs <- err
					return
				}
				if err := consumeRandomly(run, c, rng, &mu, processed, parkedBy); err != nil {
					errs <- err
					return
				}
				if err := c.Close(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / 2 {
				if _, err := store.Append(ctx, fmt.Sprint("w", w), cairn.Any, ev("E")); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for {
		info, err := m.Info(ctx, subscription.AllStream, "g")
		if err != nil {
			t.Fatal(err)
		}
		if info.Checkpoint > info.Processed {
			t.Fatalf("checkpoint %d passed the first unprocessed event %d", info.Checkpoint, info.Processed)
		}
		if info.Processed == total {
			break
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-time.After(time.Millisecond):
		}
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	info, err := m.Info(ctx, subscription.AllStream, "g")
	if err != nil {
		t.Fatal(err)
	}
	// With message timeouts, an answer may come after its event timed out
	// and be ignored, so the consumers' own account is only exact without.
	exact := timeout < 0
	if exact {
		for p := range parkedBy {
			if _, ok := processed[p]; ok {
				t.Fatalf("position %d both parked and %s", p, processed[p])
			}
		}
		if want := total - len(processed); info.Parked != want {
			t.Fatalf("%d parked, want %d (%d acked or skipped of %d)", info.Parked, want, len(processed), total)
		}
		if len(parkedBy) > info.Parked {
			t.Fatalf("%d parked by consumers but only %d in the parked list", len(parkedBy), info.Parked)
		}
	}

	t.Logf("%d acked or skipped, %d parked (%d by consumers)", len(processed), info.Parked, len(parkedBy))
	// Replay the parked events and ack them all, without timeouts, which
	// could park them again.
	settings.MessageTimeout = -1
	if err := m.Update(ctx, subscription.AllStream, "g", settings); err != nil {
		t.Fatal(err)
	}
	n, err := m.ReplayParked(ctx, subscription.AllStream, "g", 0)
	if err != nil || n != info.Parked {
		t.Fatalf("replayed %d, %v; want %d", n, err, info.Parked)
	}
	c := connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{InFlight: 100})
	for range n {
		d := next(t, ctx, c)
		if !d.Replayed {
			t.Fatalf("got %+v, want a replayed event", d)
		}
		if _, ok := processed[d.Event.Position]; ok && exact {
			t.Fatalf("replayed position %d, which was %s", d.Event.Position, processed[d.Event.Position])
		}
		processed[d.Event.Position] = "replayed"
		ack(t, ctx, c, d)
	}
	if len(processed) != total {
		t.Fatalf("%d events processed, want %d", len(processed), total)
	}
	if info, _ := m.Info(ctx, subscription.AllStream, "g"); info.Parked != 0 {
		t.Fatalf("%d still parked", info.Parked)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Restart: the group resumes after the last event.
	store = f.reopen(t, store)
	m = newManager(t, store)
	res := mustAppend(t, store, "after", ev("After"))
	c = connect(t, ctx, m, subscription.AllStream, "g", subscription.ConsumerOptions{})
	if d := next(t, ctx, c); d.Event.Position != res.Position || d.RetryCount != 0 {
		t.Fatalf("after the restart got position %d (retry %d), want %d", d.Event.Position, d.RetryCount, res.Position)
	}
}

// consumeRandomly answers deliveries at random until ctx ends or it decides
// to walk away, leaving what it holds unanswered.
func consumeRandomly(ctx context.Context, c *subscription.Consumer, rng *rand.Rand, mu *sync.Mutex, processed map[uint64]string, parked map[uint64]bool) error {
	for {
		d, err := c.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return err
		}
		p := d.Event.Position
		switch r := rng.IntN(100); {
		case r < 60:
			err = c.Ack(ctx, d.Event.ID)
			mu.Lock()
			processed[p] = "ack"
			mu.Unlock()
		case r < 75:
			err = c.Nack(ctx, subscription.Retry, "", d.Event.ID)
		case r < 82:
			err = c.Nack(ctx, subscription.Skip, "", d.Event.ID)
			mu.Lock()
			processed[p] = "skip"
			mu.Unlock()
		case r < 88:
			err = c.Nack(ctx, subscription.Park, "random", d.Event.ID)
			mu.Lock()
			parked[p] = true
			mu.Unlock()
		default:
			return nil // walk away holding d
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
}
