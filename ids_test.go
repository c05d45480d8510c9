package cairn

import (
	"bytes"
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
