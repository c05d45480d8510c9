package cairn_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

func Example() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()

	// Open an account: the stream must not exist yet.
	res, err := store.Append(ctx, "account-7", cairn.NoStream,
		cairn.EventData{Type: "Opened", Data: []byte(`{"owner":"ada"}`)},
		cairn.EventData{Type: "Deposited", Data: []byte(`{"amount":100}`)},
	)
	if err != nil {
		panic(err)
	}
	fmt.Println("appended up to version", res.Version)

	// A writer that decided on version 0 loses the race.
	_, err = store.Append(ctx, "account-7", cairn.Exact(0), cairn.EventData{Type: "Withdrawn", Data: []byte(`{"amount":500}`)})
	var wrong *cairn.WrongExpectedVersionError
	if errors.As(err, &wrong) {
		fmt.Println("conflict: stream is at version", wrong.Actual)
	}

	for e, err := range store.Stream(ctx, "account-7", 0, cairn.Forward) {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// appended up to version 1
	// conflict: stream is at version 1
	// 0 Opened {"owner":"ada"}
	// 1 Deposited {"amount":100}
}

func ExampleParseExpectedVersion() {
	for _, n := range []int64{-1, -2, -4, 3, -3} {
		e, err := cairn.ParseExpectedVersion(n)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(n, "=", e)
	}
	// Output:
	// -1 = no stream
	// -2 = any
	// -4 = stream exists
	// 3 = 3
	// invalid expected: -3 is not an expected version: use -1 (no stream), -2 (any), -4 (stream exists) or an exact version ≥ 0
}

func ExampleStore_GetEvents() {
	ctx := context.Background()
	store := cairn.NewStore(memstore.New(), cairn.Options{})
	defer store.Close()
	for i := range 5 {
		store.Append(ctx, "agg", cairn.Any, cairn.EventData{Type: fmt.Sprint("E", i)})
	}
	// Maestro's sequences are 1-based: min < sequence ≤ max.
	for e, err := range store.GetEvents(ctx, "agg", 2, 4) {
		if err != nil {
			panic(err)
		}
		fmt.Println("sequence", e.Sequence(), "version", e.Version, e.Type)
	}
	// Output:
	// sequence 3 version 2 E2
	// sequence 4 version 3 E3
}
