// Package linearize records the history of appends and reads that the
// cluster's fault tests make, and checks it with porcupine against a model
// of streams: an append with an expected version (or none) adds one event
// when the expectation holds, a read returns a stream's last version.
//
// An append whose outcome the caller never learned (a timeout, a node that
// died, a retry that gave up) is recorded as [Unknown]: it may have taken
// effect at any time after it was called, or never, and the checker is
// free to choose, as porcupine's models do with operations that never
// returned. A caller that retries an append with the same event id and
// expectation records one operation, from the first call to the last
// answer: idempotency by event id makes the retries one append.
package linearize

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Any is the expectation of an append that checks nothing.
const Any int64 = -2

// NoStream is the expectation of an append that needs the stream absent.
const NoStream int64 = -1

// Append is an append of one event to Stream, expecting Expected: [Any],
// [NoStream] or the stream's last version.
type Append struct {
	Stream   string
	Expected int64
}

// Read is a read of Stream's last version that sees every append
// acknowledged before it was called.
type Read struct {
	Stream string
}

// Outcome is what the caller learned of an operation.
type Outcome int

const (
	// Acked: the append was acknowledged (or the read answered) with Version.
	Acked Outcome = iota
	// Conflict: the append was refused, its expectation not met.
	Conflict
	// Unknown: no answer; the append may or may not have taken effect.
	Unknown
)

// Result is an operation's outcome, and the version appended or read.
// A read's version is -1 for a stream that does not exist.
type Result struct {
	Outcome Outcome
	Version int64
}

func (r Result) String() string {
	switch r.Outcome {
	case Conflict:
		return "conflict"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprint(r.Version)
}

func streamOf(input any) string {
	if r, ok := input.(Read); ok {
		return r.Stream
	}
	return input.(Append).Stream
}

// Model is the porcupine model of the streams; its state is a stream's
// last version (-1 before the first append), and histories are checked
// stream by stream.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := streamOf(op.Input)
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return int64(-1) },
	Step: func(state, input, output any) (bool, any) {
		v, res := state.(int64), output.(Result)
		if _, ok := input.(Read); ok {
			return res.Outcome == Acked && res.Version == v, v
		}
		a := input.(Append)
		met := a.Expected == Any || a.Expected == v
		switch res.Outcome {
		case Unknown:
			// Taking effect here, it succeeds only if its expectation
			// holds here; never taking effect is linearising it last,
			// where it changes nothing seen.
			if met {
				return true, v + 1
			}
			return true, v
		case Conflict:
			return !met, v
		}
		return met && res.Version == v+1, v + 1
	},
	DescribeOperation: func(input, output any) string {
		if r, ok := input.(Read); ok {
			return fmt.Sprintf("read %s -> %v", r.Stream, output)
		}
		a := input.(Append)
		return fmt.Sprintf("append %s exp %d -> %v", a.Stream, a.Expected, output)
	},
}

// History is a history of operations, safe for concurrent use.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewHistory starts a history; its times count from now.
func NewHistory() *History { return &History{start: time.Now()} }

// Now is the time of a call or an answer, for [History.Add].
func (h *History) Now() int64 { return int64(time.Since(h.start)) }

// Add records an operation by client, called at call and answered now
// ([Unknown] ones never answered).
func (h *History) Add(client int, op any, call int64, res Result) {
	ret := h.Now()
	if res.Outcome == Unknown {
		ret = math.MaxInt64
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: op, Call: call, Output: res, Return: ret})
}

// Ops returns the operations recorded.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// Len is the number of operations recorded.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

// Check checks the history against [Model], for at most timeout: the
// result is porcupine.Unknown when it ran out of time. When the history is
// not linearizable and show is not empty, porcupine's visualization of it
// is written to the file show.
func (h *History) Check(timeout time.Duration, show string) (porcupine.CheckResult, error) {
	h.mu.Lock()
	ops := slices.Clone(h.ops)
	h.mu.Unlock()
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	if res == porcupine.Illegal && show != "" {
		return res, porcupine.VisualizePath(Model, info, show)
	}
	return res, nil
}

// LongestWithoutAck is the longest time in [from, to] (times of
// [History.Now]) in which no append was acknowledged: how long writes
// stopped across a fault. A figure, not a check.
func (h *History) LongestWithoutAck(from, to int64) time.Duration {
	h.mu.Lock()
	acks := []int64{from, to}
	for _, op := range h.ops {
		if _, ok := op.Input.(Append); ok && op.Output.(Result).Outcome == Acked && op.Return > from && op.Return < to {
			acks = append(acks, op.Return)
		}
	}
	h.mu.Unlock()
	slices.Sort(acks)
	var gap int64
	for i := 1; i < len(acks); i++ {
		gap = max(gap, acks[i]-acks[i-1])
	}
	return time.Duration(gap)
}
