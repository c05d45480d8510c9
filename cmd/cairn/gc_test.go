package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 1600},             // a heap not yet collected: Go's minimum heap at 64 MiB
		{1 << 20, 1625},       // a small heap: its goal is its minimum heap, 65 MiB
		{8 << 20, 800},        // goal: live + 64 MiB
		{16 << 20, 400},       // a reading server's heap: as GOGC=400
		{32 << 20, 200},       //
		{64 << 20, 100},       // from here on, as Go's default
		{(64 << 20) - 1, 100}, // just below: rounded down
		{1 << 30, 100},        // a heap of records in memory doubles, no more
	} {
		if got := gcPercentFor(c.live); got != c.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", c.live>>20, got, c.want)
		}
	}
}

// The binary's pace follows the live heap: a heap larger than the headroom
// is collected as at GOGC=100, and once it shrinks the pace goes back.
func TestPaceGCFollowsTheLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	stop := paceGC()
	defer func() {
		stop()
		debug.SetGCPercent(old)
	}()
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// waitFor collects until the pace set after a collection satisfies ok.
	waitFor := func(what string, ok func(uint64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok(gogc()) {
			if time.Now().After(deadline) {
				t.Fatalf("GOGC is %d, not %s", gogc(), what)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}
	live := make([][]byte, 128)
	for i := range live {
		live[i] = make([]byte, 1<<20)
		live[i][0] = 1
	}
	waitFor("100 with 128 MiB live", func(p uint64) bool { return p == 100 })
	runtime.KeepAlive(live)
	live = nil
	waitFor("above 400 with little live", func(p uint64) bool { return p > 400 })
}
