package projections

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// BudgetError is the reason a call into a projection's JavaScript was
// stopped: it ran longer than its time budget, or the process's live heap
// grew by more than the memory budget while it ran.
type BudgetError struct {
	// Call names the JavaScript that was running: a handler, partitionBy,
	// a transform or the query's definition.
	Call string
	// Memory is true for the memory budget, false for the time budget.
	Memory bool
	// Limit is the budget: a duration or a number of bytes.
	Limit string
}

func (e *BudgetError) Error() string {
	if e.Memory {
		return fmt.Sprintf("%s grew the live heap by more than its memory budget of %s and was stopped", e.Call, e.Limit)
	}
	return fmt.Sprintf("%s ran longer than its time budget of %s and was stopped", e.Call, e.Limit)
}

// watchdog enforces the time and memory budgets of the calls into the
// projections' JavaScript runtimes. goja can stop a running script from
// another goroutine (Runtime.Interrupt) but has no budget of its own, so a
// goroutine watches every runtime that is inside a call:
//
//   - time: a call running longer than timeout is interrupted;
//   - memory: the heap is sampled through runtime/metrics; when, during a
//     call, either the heap's objects or the live heap measured by the last
//     collection have grown by more than the budget since the call began,
//     the watchdog forces a collection and interrupts the call if the live
//     heap is still more than the budget above what it was when the call
//     began.
//
// It ticks only while some call is in progress. A call shorter than a tick
// is never measured; an interrupt lands between two JavaScript
// instructions, never inside a native built-in (see the package
// documentation for what the budgets guarantee).
type watchdog struct {
	timeout time.Duration // <= 0: none
	memory  int64         // bytes; <= 0: none
	tick    time.Duration

	mu     sync.Mutex
	guards map[*guard]struct{}

	active atomic.Int64 // calls in progress
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
}

func newWatchdog(timeout time.Duration, memory int64) *watchdog {
	tick := 2 * time.Millisecond
	if timeout > 0 && timeout/10 < tick {
		tick = max(timeout/10, 100*time.Microsecond)
	}
	w := &watchdog{
		timeout: timeout,
		memory:  memory,
		tick:    tick,
		guards:  map[*guard]struct{}{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go w.run()
	return w
}

// close stops the watchdog goroutine.
func (w *watchdog) close() {
	close(w.stop)
	<-w.done
}

// guard watches one runtime. Its methods enter and leave are called by the
// goroutine that owns the runtime; the watchdog reads and interrupts under
// mu, so that an interrupt can only land on the call it was meant for.
type guard struct {
	w  *watchdog
	rt *goja.Runtime

	mu          sync.Mutex
	seq         uint64 // odd while a call is in progress
	start       time.Time
	call        string
	interrupted *BudgetError // the interrupt of the call in progress

	// Owned by the watchdog goroutine.
	seen        uint64 // the call the baselines below belong to
	baseObjects uint64
	baseLive    uint64
}

func (w *watchdog) watch(rt *goja.Runtime) *guard {
	g := &guard{w: w, rt: rt}
	w.mu.Lock()
	w.guards[g] = struct{}{}
	w.mu.Unlock()
	return g
}

// release stops watching g's runtime.
func (g *guard) release() {
	g.w.mu.Lock()
	delete(g.w.guards, g)
	g.w.mu.Unlock()
}

func (g *guard) enter(call string) {
	g.mu.Lock()
	g.seq++
	g.start = time.Now()
	g.call = call
	g.mu.Unlock()
	if g.w.active.Add(1) == 1 {
		select {
		case g.w.wake <- struct{}{}:
		default:
		}
	}
}

// leave ends a call and returns the budget it exceeded, if the watchdog
// interrupted it.
func (g *guard) leave() *BudgetError {
	g.mu.Lock()
	g.seq++
	b := g.interrupted
	if b != nil {
		// The interrupt either stopped this call or landed after its last
		// instruction; either way it must not stop the next one.
		g.rt.ClearInterrupt()
		g.interrupted = nil
	}
	g.mu.Unlock()
	g.w.active.Add(-1)
	return b
}

// interrupt stops call seq of g's runtime, if it is still running.
func (g *guard) interrupt(seq uint64, err *BudgetError) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seq == seq && g.interrupted == nil {
		g.rt.Interrupt(err)
		g.interrupted = err
	}
}

var heapSamples = []string{"/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes"}

// readHeap returns the bytes of heap objects (live or not yet swept) and the
// live heap marked by the last collection.
func readHeap() (objects, live uint64) {
	s := []metrics.Sample{{Name: heapSamples[0]}, {Name: heapSamples[1]}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		objects = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		live = s[1].Value.Uint64()
	}
	return objects, live
}

func (w *watchdog) run() {
	defer close(w.done)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		if w.active.Load() == 0 {
			select {
			case <-w.wake:
			case <-w.stop:
				return
			}
		}
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		w.check()
	}
}

func (w *watchdog) check() {
	w.mu.Lock()
	guards := make([]*guard, 0, len(w.guards))
	for g := range w.guards {
		guards = append(guards, g)
	}
	w.mu.Unlock()
	var objects, live uint64
	heapRead := false
	for _, g := range guards {
		g.mu.Lock()
		seq, start, call := g.seq, g.start, g.call
		g.mu.Unlock()
		if seq%2 == 0 {
			continue
		}
		if w.memory > 0 && !heapRead {
			objects, live = readHeap()
			heapRead = true
		}
		if seq != g.seen {
			g.seen, g.baseObjects, g.baseLive = seq, objects, live
		}
		if w.timeout > 0 && time.Since(start) > w.timeout {
			g.interrupt(seq, &BudgetError{Call: call, Limit: w.timeout.String()})
			continue
		}
		if w.memory <= 0 {
			continue
		}
		budget := uint64(w.memory)
		if objects <= g.baseObjects+budget && live <= g.baseLive+budget {
			continue
		}
		// The heap grew, but perhaps only with garbage: collect, and
		// judge by what survives.
		runtime.GC()
		objects, live = readHeap()
		if live > g.baseLive+budget {
			g.interrupt(seq, &BudgetError{Call: call, Memory: true, Limit: formatBytes(w.memory)})
			continue
		}
		// Measure the next growth from here, so that a call that makes
		// garbage does not force a collection at every tick.
		g.baseObjects = objects
	}
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
