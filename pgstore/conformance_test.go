package pgstore_test

import (
	"fmt"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/storetest"
)

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		return newStore(t)
	})
}

// TestModel runs the model test with the requirement that compaction
// removes every event that was dead when it ran (whole chunks, and the
// leading events of chunks, which it rewrites).
func TestModel(t *testing.T) {
	pgtest.URL(t)
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := cairn.NewStore(newStore(t), cairn.Options{ReadBatch: 50})
			storetest.RunModel(t, s, storetest.ModelOptions{Seed: seed + 10, Steps: 100, CompactRemoves: true})
		})
	}
}
