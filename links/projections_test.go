package links_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/links"
)

func TestDisabledProjectionStopsItsStreams(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		p, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		r := links.NewReader(s, links.Options{Projections: p})
		appendOK(t, s, "order-1", ev("OrderPlaced"))
		if err := p.Disable(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		appendOK(t, s, "order-2", ev("OrderPlaced"))
		appendOK(t, s, "shop-1", ev("Opened"))

		same(t, describe(read(t, r, "$ce-order", 0, 10, cairn.Forward, true)), []string{"0:0@order-1->order-1@0"})
		same(t, describe(read(t, r, "$ce-order", cairn.StreamEnd, 10, cairn.Backward, false)), []string{"0:0@order-1"})
		if v, err := r.StreamVersion(ctx, "$ce-order"); err != nil || v != 0 {
			t.Errorf("StreamVersion($ce-order) while disabled = %d, %v; want 0", v, err)
		}
		if _, err := r.ReadStream(ctx, "$ce-shop", 0, 10, 0, cairn.Forward, false); !errors.Is(err, cairn.ErrStreamNotFound) {
			t.Errorf("a category first written while disabled: %v, want not found", err)
		}
		// The other projections go on.
		same(t, describe(read(t, r, "$et-OrderPlaced", 0, 10, cairn.Forward, false)), []string{"0:0@order-1", "1:0@order-2"})
		st, err := p.Status(ctx, links.ByCategory)
		if err != nil || st.Enabled {
			t.Errorf("Status = %+v, %v; want disabled", st, err)
		}

		// A restart keeps it disabled, at the same point.
		p2, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		r2 := links.NewReader(s, links.Options{Projections: p2})
		same(t, describe(read(t, r2, "$ce-order", 0, 10, cairn.Forward, false)), []string{"0:0@order-1"})

		if err := p2.Enable(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		same(t, describe(read(t, r2, "$ce-order", 0, 10, cairn.Forward, false)), []string{"0:0@order-1", "1:0@order-2"})
		same(t, describe(read(t, r2, "$ce-shop", 0, 10, cairn.Forward, false)), []string{"0:0@shop-1"})

		// Reset changes the epoch, not the streams.
		if err := p2.Reset(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		st, err = p2.Status(ctx, links.ByCategory)
		if err != nil || !st.Enabled || st.Epoch != 1 {
			t.Errorf("Status after reset = %+v, %v; want enabled, epoch 1", st, err)
		}
		same(t, describe(read(t, r2, "$ce-order", 0, 10, cairn.Forward, false)), []string{"0:0@order-1", "1:0@order-2"})

		if err := p2.Disable(ctx, "$nope"); !errors.Is(err, links.ErrUnknownProjection) {
			t.Errorf("Disable($nope): %v, want ErrUnknownProjection", err)
		}
	})
}

// A subscriber waiting on the Store's changes while a projection is
// disabled is woken by the event that records Enable, and reads its streams
// at once: the state its reader uses must be in place by then, or it would
// find nothing new and wait for an event that may never come.
func TestEnableShowsTheRestToTheSubscriberItWakes(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		p, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		r := links.NewReader(s, links.Options{Projections: p})
		appendOK(t, s, "order-0", ev("OrderPlaced"))
		for i := 1; i <= 30; i++ {
			if err := p.Disable(ctx, links.ByCategory); err != nil {
				t.Fatal(err)
			}
			res := appendOK(t, s, fmt.Sprintf("order-%d", i), ev("OrderPlaced"))
			done := make(chan error, 1)
			go func() { done <- p.Enable(ctx, links.ByCategory) }()
			// Wait as a subscriber does, until the Store reports the
			// event after order-i: the one that records Enable. (An
			// engine may report an earlier change late.)
			for {
				changed := s.Changes()
				if h, ok := s.Head(); ok && h > res.Position {
					break
				}
				<-changed
			}
			if got := read(t, r, "$ce-order", 0, 100, cairn.Forward, false); len(got.Events) != i+1 {
				t.Fatalf("round %d: woken by Enable, $ce-order shows %d entries, want %d", i, len(got.Events), i+1)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A change whose event cannot be recorded is taken back: readers go on
// seeing the state as it was.
func TestUnrecordedChangeIsTakenBack(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		p, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		appendOK(t, s, "order-1", ev("OrderPlaced"))
		if err := p.Disable(ctx, links.ByCategory); err != nil {
			t.Fatal(err)
		}
		appendOK(t, s, "order-2", ev("OrderPlaced"))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Enable(ctx, links.ByCategory); err == nil {
			t.Fatal("Enable on a closed store succeeded")
		}
		st, err := p.Status(ctx, links.ByCategory)
		if err != nil || st.Enabled || st.Position != 1 {
			t.Errorf("Status after a failed Enable = %+v, %v; want disabled at position 1", st, err)
		}
	})
}

func TestDisabledBeforeAnyEvent(t *testing.T) {
	engines(t, func(t *testing.T, s *cairn.Store) {
		ctx := context.Background()
		p, err := links.OpenProjections(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Disable(ctx, links.ByEventType); err != nil {
			t.Fatal(err)
		}
		appendOK(t, s, "order-1", ev("OrderPlaced"))
		r := links.NewReader(s, links.Options{Projections: p})
		for _, dir := range []cairn.Direction{cairn.Forward, cairn.Backward} {
			from := int64(0)
			if dir == cairn.Backward {
				from = cairn.StreamEnd
			}
			if _, err := r.ReadStream(ctx, "$et-OrderPlaced", from, 10, 0, dir, false); !errors.Is(err, cairn.ErrStreamNotFound) {
				t.Errorf("read %s: %v, want not found", dir, err)
			}
		}
	})
}

func TestCheckQuery(t *testing.T) {
	for _, q := range []string{"", "-", "first\n-", " first \r\n - \n"} {
		if err := links.CheckQuery(links.ByCategory, q); err != nil {
			t.Errorf("CheckQuery(%q): %v", q, err)
		}
	}
	for _, q := range []string{"last\n-", "first\n_", "_", "first\n-\nx"} {
		err := links.CheckQuery(links.ByCategory, q)
		if !errors.Is(err, cairn.ErrInvalidArgument) {
			t.Errorf("CheckQuery(%q): %v, want an invalid argument", q, err)
		}
	}
	if err := links.CheckQuery(links.ByEventType, "x"); !errors.Is(err, cairn.ErrInvalidArgument) {
		t.Errorf("CheckQuery($by_event_type, x): %v", err)
	}
}
