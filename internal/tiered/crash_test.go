package tiered_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairndb/cairn/internal/tiered"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// addEntries is the i-th add of the crash test: a sorted batch decided by
// i alone, so that the state after any number of adds can be rebuilt.
func addEntries(i int) []tiered.Entry {
	rng := rand.New(rand.NewPCG(uint64(i), 3))
	seen := map[int]bool{}
	var es []tiered.Entry
	for range 1 + rng.IntN(60) {
		k := rng.IntN(400)
		if seen[k] {
			continue
		}
		seen[k] = true
		e := tiered.Entry{Key: fmt.Appendf(nil, "k%04d", k)}
		if rng.IntN(6) == 0 {
			e.Delete = true
		} else {
			e.Value = fmt.Appendf(nil, "add %d", i)
		}
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b tiered.Entry) int { return bytes.Compare(a.Key, b.Key) })
	return es
}

// A crash at any moment, keeping only what was synced (or a random part
// of what was not besides), leaves the set as it was after one add: the
// last one acknowledged or a later one, whole, with its mark; merges in
// flight either done or not. Open removes the tables a crash left out of
// the manifest.
func TestCrash(t *testing.T) {
	for round, unsynced := range []int{0, 30, 70, 100, 0, 50, 10, 90} {
		t.Run(fmt.Sprintf("round%d-unsynced%d", round, unsynced), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(uint64(round), 4))
			fs := vfs.NewCrashableMem()
			opts := tiered.Options{FS: fs, MergeWidth: 2 + round%3, BlockBytes: 128}
			s, err := tiered.Open("set", opts)
			if err != nil {
				t.Fatal(err)
			}
			var acked atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 1; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if err := s.Add([]byte(strconv.Itoa(i)), slices.Values(addEntries(i))); err != nil {
						return // the set was closed under it
					}
					acked.Store(int64(i))
				}
			})
			target := int64(20 + rng.IntN(200))
			for acked.Load() < target {
				// The adds go on in the background.
				runtimeYield()
			}
			durable := acked.Load()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(round), 5))})
			close(stop)
			wg.Wait()
			_ = s.Close()

			opts.FS = crashed
			s, err = tiered.Open("set", opts)
			if err != nil {
				t.Fatalf("open after the crash: %v", err)
			}
			defer s.Close()
			sn := s.Snapshot()
			defer sn.Close()
			mark, err := strconv.Atoi(string(sn.Mark()))
			if err != nil {
				t.Fatalf("mark %q after the crash", sn.Mark())
			}
			if int64(mark) < durable {
				t.Fatalf("the set holds adds up to %d after the crash; %d were acknowledged", mark, durable)
			}
			m := model{}
			for i := 1; i <= mark; i++ {
				for _, e := range addEntries(i) {
					if e.Delete {
						delete(m, string(e.Key))
					} else {
						m[string(e.Key)] = string(e.Value)
					}
				}
			}
			keys := 400
			for i := range keys {
				k := fmt.Sprintf("k%04d", i)
				v, ok, err := sn.Get([]byte(k))
				if err != nil {
					t.Fatal(err)
				}
				if want, in := m[k]; ok != in || string(v) != want {
					t.Fatalf("after the crash at add %d: %s = %q, %v; want %q, %v", mark, k, v, ok, want, in)
				}
			}
			n := 0
			it := sn.NewIter()
			for ok := it.First(); ok; ok = it.Next() {
				n++
			}
			if it.Err() != nil || n != len(m) {
				t.Fatalf("after the crash: iterated over %d keys (%v), want %d", n, it.Err(), len(m))
			}
			// The set goes on taking adds, and merges what the crash left.
			if err := s.Add([]byte("after"), slices.Values(addEntries(mark+1))); err != nil {
				t.Fatal(err)
			}
			if err := s.Settle(); err != nil {
				t.Fatal(err)
			}
			sn.Close() // its tables, merged since, go
			after := s.Snapshot()
			defer after.Close()
			names, err := crashed.List("set")
			if err != nil {
				t.Fatal(err)
			}
			files := 0
			for _, name := range names {
				if strings.HasSuffix(name, ".tbl") {
					files++
				}
			}
			if files != len(after.Tables()) {
				t.Fatalf("%d table files after Open, %d tables listed", files, len(after.Tables()))
			}
		})
	}
}

func runtimeYield() { runtime.Gosched() }
