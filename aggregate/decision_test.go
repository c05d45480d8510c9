package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
	"github.com/cairndb/cairn/memstore"
)

// A seat of a show is booked at most once, whatever stream records it.

type bookSeat struct{ Show, Seat, By string }

type seatBooked struct{ Show, Seat, By string }

func seatDecision() aggregate.Decision[bool, bookSeat, seatBooked] {
	codec := aggregate.NewCodec[seatBooked](nil)
	aggregate.MustRegister[seatBooked](codec, "SeatBooked")
	seatTag := func(show, seat string) string { return "seat:" + show + "/" + seat }
	return aggregate.Decision[bool, bookSeat, seatBooked]{
		Name: "BookSeat",
		Model: func(c bookSeat) []aggregate.Projection[bool, seatBooked] {
			return []aggregate.Projection[bool, seatBooked]{{
				Query:  cairn.Query{Items: []cairn.QueryItem{{Types: []string{"SeatBooked"}, Tags: []string{seatTag(c.Show, c.Seat)}}}},
				Evolve: func(bool, seatBooked) bool { return true },
			}}
		},
		Decide: func(booked bool, c bookSeat) ([]seatBooked, error) {
			if booked {
				return nil, fmt.Errorf("seat %s of %s is taken", c.Seat, c.Show)
			}
			return []seatBooked{seatBooked(c)}, nil
		},
		Tags:   func(e seatBooked) []string { return []string{seatTag(e.Show, e.Seat), "customer:" + e.By} },
		Stream: func(c bookSeat) string { return "customer-" + c.By },
		Codec:  codec,
	}
}

func ExampleDecider() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	seats, err := aggregate.NewDecider(store, seatDecision(), aggregate.DecisionOptions{})
	if err != nil {
		panic(err)
	}
	res, err := seats.Handle(ctx, bookSeat{Show: "hamlet", Seat: "A1", By: "ann"})
	fmt.Println(res.State, res.Position, err)
	_, err = seats.Handle(ctx, bookSeat{Show: "hamlet", Seat: "A1", By: "bob"})
	fmt.Println(err)
	// Output:
	// true 0 <nil>
	// seat A1 of hamlet is taken
}

// When an event the model selects is appended between the read and the
// append, the condition fails and the command is decided again on the new
// state; a domain error is returned as Decide returned it.
func TestDeciderDecidesAgainAfterAConflict(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	def := seatDecision()
	decide, calls := def.Decide, 0
	def.Decide = func(booked bool, c bookSeat) ([]seatBooked, error) {
		if calls++; calls == 1 {
			// Another writer books the seat meanwhile.
			_, err := store.Append(ctx, "customer-eve", cairn.Any, cairn.EventData{Type: "SeatBooked", Data: []byte(`{}`), Tags: []string{"seat:hamlet/A1"}})
			if err != nil {
				t.Fatal(err)
			}
		}
		return decide(booked, c)
	}
	seats, err := aggregate.NewDecider(store, def, aggregate.DecisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = seats.Handle(ctx, bookSeat{Show: "hamlet", Seat: "A1", By: "ann"})
	if calls != 2 || err == nil || err.Error() != "seat A1 of hamlet is taken" {
		t.Fatalf("after %d decisions: %v; want the second decision to refuse the taken seat", calls, err)
	}
	if ok, _ := store.StreamExists(ctx, "customer-ann"); ok {
		t.Fatal("the refused decision wrote its events")
	}
}

// A decision that keeps conflicting gives up after MaxAttempts with the
// last ConditionError.
func TestDeciderGivesUp(t *testing.T) {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()
	def := seatDecision()
	decide := def.Decide
	def.Decide = func(booked bool, c bookSeat) ([]seatBooked, error) {
		// Every decision is overtaken by an event its model selects.
		_, err := store.Append(ctx, "noise", cairn.Any, cairn.EventData{Type: "SeatBooked", Data: []byte(`{}`), Tags: []string{"seat:hamlet/A1", "other"}})
		if err != nil {
			t.Fatal(err)
		}
		return decide(false, c)
	}
	seats, err := aggregate.NewDecider(store, def, aggregate.DecisionOptions{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = seats.Handle(ctx, bookSeat{Show: "hamlet", Seat: "A1", By: "ann"})
	var ce *cairn.ConditionError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("Handle = %v, want a ConditionError after 3 attempts", err)
	}
	if ce.Position != 2 {
		t.Fatalf("the conflict names position %d, want 2, the third attempt's rival", ce.Position)
	}
}

func TestNewDeciderRefusesIncompleteDecisions(t *testing.T) {
	store := memstore.Open()
	defer store.Close()
	for name, edit := range map[string]func(*aggregate.Decision[bool, bookSeat, seatBooked]){
		"name":   func(d *aggregate.Decision[bool, bookSeat, seatBooked]) { d.Name = "" },
		"Model":  func(d *aggregate.Decision[bool, bookSeat, seatBooked]) { d.Model = nil },
		"Decide": func(d *aggregate.Decision[bool, bookSeat, seatBooked]) { d.Decide = nil },
		"Stream": func(d *aggregate.Decision[bool, bookSeat, seatBooked]) { d.Stream = nil },
		"Codec":  func(d *aggregate.Decision[bool, bookSeat, seatBooked]) { d.Codec = nil },
	} {
		def := seatDecision()
		edit(&def)
		if _, err := aggregate.NewDecider(store, def, aggregate.DecisionOptions{}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("a decision without %s: %v, want an error naming it", name, err)
		}
	}
	def := seatDecision()
	def.Model = func(bookSeat) []aggregate.Projection[bool, seatBooked] {
		return []aggregate.Projection[bool, seatBooked]{{Evolve: func(bool, seatBooked) bool { return true }}}
	}
	d, err := aggregate.NewDecider(store, def, aggregate.DecisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Handle(context.Background(), bookSeat{}); err == nil || !strings.Contains(err.Error(), "empty query") {
		t.Fatalf("a projection with an empty query: %v, want an error", err)
	}
}
