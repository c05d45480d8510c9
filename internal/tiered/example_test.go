package tiered_test

import (
	"fmt"
	"log"
	"os"
	"slices"

	"github.com/cairndb/cairn/internal/tiered"
)

// An index kept in memory hands its entries to the set in sorted batches,
// each with the log position its tables then cover; reads go through a
// snapshot.
func Example() {
	dir, err := os.MkdirTemp("", "tiered")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	set, err := tiered.Open(dir, tiered.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer set.Close()
	if err := set.Add([]byte("log 2"), slices.Values([]tiered.Entry{
		{Key: []byte("order-1/0"), Value: []byte("position 0")},
		{Key: []byte("order-2/0"), Value: []byte("position 1")},
	})); err != nil {
		log.Fatal(err)
	}
	if err := set.Add([]byte("log 3"), slices.Values([]tiered.Entry{
		{Key: []byte("order-1/1"), Value: []byte("position 2")},
		{Key: []byte("order-2/0"), Delete: true},
	})); err != nil {
		log.Fatal(err)
	}

	sn := set.Snapshot()
	defer sn.Close()
	fmt.Printf("mark %s\n", sn.Mark())
	it := sn.NewIter()
	for ok := it.SeekGE([]byte("order-")); ok; ok = it.Next() {
		fmt.Printf("%s: %s\n", it.Key(), it.Value())
	}
	if err := it.Err(); err != nil {
		log.Fatal(err)
	}
	_, found, err := sn.Get([]byte("order-2/0"))
	fmt.Println("order-2/0 found:", found, err)
	// Output:
	// mark log 3
	// order-1/0: position 0
	// order-1/1: position 2
	// order-2/0 found: false <nil>
}
