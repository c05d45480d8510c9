package cairn

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

func TestGeneratedIDs(t *testing.T) {
	var g idGen
	var mu sync.Mutex
	var all [][]EventData
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				events := make([]EventData, 20)
				events[3].ID = uuid.MustParse("00000000-0000-4000-8000-000000000001") // given: kept
				if err := g.fill(events); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, events)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	seen := map[uuid.UUID]bool{}
	for _, events := range all {
		var prev uuid.UUID
		for i, e := range events {
			if i == 3 {
				if e.ID.String() != "00000000-0000-4000-8000-000000000001" {
					t.Fatalf("a given id was replaced by %v", e.ID)
				}
				continue
			}
			if e.ID.Version() != 7 || e.ID.Variant() != uuid.RFC4122 {
				t.Fatalf("%v is not an RFC 9562 version 7 UUID", e.ID)
			}
			if seen[e.ID] {
				t.Fatalf("%v generated twice", e.ID)
			}
			seen[e.ID] = true
			if i > 0 && bytes.Compare(prev[:], e.ID[:]) >= 0 {
				t.Fatalf("ids of one append are not increasing: %v then %v", prev, e.ID)
			}
			prev = e.ID
		}
	}
}

func BenchmarkGenerateIDs(b *testing.B) {
	one := make([]EventData, 1)
	b.Run("idGen/1", func(b *testing.B) {
		var g idGen
		b.ReportAllocs()
		for b.Loop() {
			clear(one)
			g.fill(one)
		}
	})
	// Appends of one event from concurrent writers, as W2's: they share
	// the Store's generator.
	b.Run("idGen/1/parallel", func(b *testing.B) {
		var g idGen
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			one := make([]EventData, 1)
			for pb.Next() {
				clear(one)
				g.fill(one)
			}
		})
	})
	events := make([]EventData, 1000)
	b.Run("idGen", func(b *testing.B) {
		var g idGen
		for b.Loop() {
			clear(events)
			g.fill(events)
		}
	})
	b.Run("uuid.NewV7", func(b *testing.B) {
		for b.Loop() {
			for i := range events {
				events[i].ID, _ = uuid.NewV7()
			}
		}
	})
}

func BenchmarkPrepareEvents(b *testing.B) {
	events := make([]EventData, 1000)
	for i := range events {
		events[i] = EventData{Type: "OrderPlaced", Data: make([]byte, 256), Tags: []string{"tenant:1"}}
	}
	var g idGen
	for b.Loop() {
		if _, err := prepareEvents(events, DefaultMaxEventBytes, &g); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDuplicateIDs checks that an append that gives two events the same id
// is refused, naming both, in a small append (ids compared) as in a large
// one (ids in a map), and that an event of its own id costs a small append
// no allocation beyond its copy of the events.
func TestDuplicateIDs(t *testing.T) {
	id := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	for _, n := range []int{2, smallAppend, smallAppend + 1, 100} {
		events := make([]EventData, n)
		for i := range events {
			events[i] = EventData{Type: "T", ID: uuid.New()}
		}
		events[1].ID = uuid.Nil // generated: no duplicate of any
		events[0].ID, events[n-1].ID = id, id
		var g idGen
		_, err := prepareEvents(events, DefaultMaxEventBytes, &g)
		var ia *InvalidArgumentError
		if !errors.As(err, &ia) || ia.Field != fmt.Sprintf("events[%d].id", n-1) || !strings.Contains(ia.Reason, "events[0]") {
			t.Errorf("%d events, the first and last of the same id: %v", n, err)
		}
		events[n-1].ID = uuid.New()
		if _, err := prepareEvents(events, DefaultMaxEventBytes, &g); err != nil {
			t.Errorf("%d events of distinct ids: %v", n, err)
		}
	}
	one := []EventData{{Type: "T", ID: id}}
	var g idGen
	if a := testing.AllocsPerRun(100, func() {
		if _, err := prepareEvents(one, DefaultMaxEventBytes, &g); err != nil {
			t.Fatal(err)
		}
	}); a > 1 {
		t.Errorf("an event with its id: %v allocations, want 1 (the copy)", a)
	}
}
