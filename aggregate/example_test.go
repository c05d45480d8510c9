package aggregate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/aggregate"
	"github.com/cairndb/cairn/memstore"
)

// A door that can be locked and unlocked; locking a locked door is refused.

type door struct{ Locked bool }

type doorCommand struct{ Lock bool }

type doorEvent interface{ isDoorEvent() }

type doorLocked struct{ By string }
type doorUnlocked struct{}

func (doorLocked) isDoorEvent()   {}
func (doorUnlocked) isDoorEvent() {}

var errAlreadyLocked = errors.New("the door is already locked")

func Example() {
	ctx := context.Background()
	store := memstore.Open()
	defer store.Close()

	codec := aggregate.NewCodec[doorEvent](nil)
	aggregate.MustRegister[doorLocked](codec, "DoorLocked")
	aggregate.MustRegister[doorUnlocked](codec, "DoorUnlocked")

	doors, err := aggregate.New(store, aggregate.Definition[door, doorCommand, doorEvent]{
		Category: "door",
		Decide: func(s door, c doorCommand) ([]doorEvent, error) {
			switch {
			case c.Lock && s.Locked:
				return nil, errAlreadyLocked
			case c.Lock:
				return []doorEvent{doorLocked{By: "caretaker"}}, nil
			case s.Locked:
				return []doorEvent{doorUnlocked{}}, nil
			}
			return nil, nil // unlocking an unlocked door changes nothing
		},
		Evolve: func(s door, e doorEvent) door {
			switch e.(type) {
			case doorLocked:
				s.Locked = true
			case doorUnlocked:
				s.Locked = false
			}
			return s
		},
		Codec: codec,
	}, aggregate.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer doors.Close()

	res, err := doors.Handle(ctx, "front", doorCommand{Lock: true})
	fmt.Println(res.State.Locked, res.Version, res.Events, err)

	_, err = doors.Handle(ctx, "front", doorCommand{Lock: true})
	fmt.Println(err)

	res, err = doors.Handle(ctx, "front", doorCommand{Lock: false})
	fmt.Println(res.State.Locked, res.Version, err)

	past, err := doors.Replay(ctx, "front", 0)
	fmt.Println("at version 0 the door was locked:", past.Locked, err)

	for e, err := range store.Stream(ctx, doors.StreamID("front"), 0, cairn.Forward) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.StreamID, e.Version, e.Type, string(e.Data))
	}
	// Output:
	// true 0 [{caretaker}] <nil>
	// the door is already locked
	// false 1 <nil>
	// at version 0 the door was locked: true <nil>
	// door-front 0 DoorLocked {"By":"caretaker"}
	// door-front 1 DoorUnlocked {}
}
