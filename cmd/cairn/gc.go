package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcHeadroom is the least the heap may grow beyond its live bytes between
// two collections of the cairn binary (GOGC unset).
//
// The engines keep their caches off the Go heap (pebble's block cache), so
// the live heap of a server that mostly reads is a few tens of megabytes,
// and at Go's default of GOGC=100 it is collected every few megabytes of
// allocation: several times a second under read load, each collection
// taking one of the cores for a while. A fixed GOGC=400 collected a
// quarter as often (cairn bench W5 at 10M events: rehydration p99 2.2-2.8
// ms -> 0.7 ms), but the embedded engine keeps the retry records and runs
// of up to about half a million recent appends in memory (diskstore's
// format 5), and a heap of a hundred megabytes of them grew to five
// hundred between collections.
//
// So the binary gives the heap a headroom of the larger of gcHeadroom and
// the live heap itself: a small heap is collected as at GOGC=400 or
// rarer, a large one as at GOGC=100. Against GOGC=400 (docs/benchmarks.md,
// "The collector's pace"): W2 at 256 writers over 2,048,000 appends peaked
// at 253-302 MiB instead of 416-509 MiB at the same throughput, and W5
// at 10M events read as fast, with the same peak.
const gcHeadroom = 64 << 20

// gcPercentFor returns the GOGC that gives a live heap of live bytes a
// goal of live + max(live, gcHeadroom). Go's goal is also never below its
// minimum heap, 4 MiB scaled by GOGC/100: the percent is kept where that
// minimum is no higher than the goal (a heap not yet collected reads as
// empty).
func gcPercentFor(live uint64) int {
	if live >= gcHeadroom {
		return 100
	}
	const minHeap = 4 << 20
	p := gcHeadroom * 100 / max(live, 1)
	return int(min(p, (live+gcHeadroom)*100/minHeap))
}

// paceGC sets GOGC by gcPercentFor now and again after every collection,
// until stop is called (the binary never calls it).
func paceGC() (stop func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var stopped atomic.Bool
	var pace func()
	pace = func() {
		if stopped.Load() {
			return
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			debug.SetGCPercent(gcPercentFor(sample[0].Value.Uint64()))
		}
		// The cleanup of an object no longer reachable runs after the
		// collection that finds it so: once a cycle.
		runtime.AddCleanup(new(gcCycle), func(struct{}) { pace() }, struct{}{})
	}
	pace()
	return func() { stopped.Store(true) }
}

// gcCycle is the object whose cleanup paces the next collection: large
// enough not to share its block with other small objects.
type gcCycle struct{ _ [16]uint64 }
