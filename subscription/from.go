package subscription

import (
	"math"
)

// From says where a subscription starts: at the start, at the end (only
// events committed after the subscription is created), or at or after a
// number, which is a global position for a subscription on $all and a stream
// version for a subscription on one stream. The zero From is [Start].
type From struct {
	kind fromKind
	n    uint64
}

type fromKind uint8

const (
	fromStart fromKind = iota
	fromEnd
	fromAt
	fromAfter
)

var (
	// Start delivers from the first event.
	Start = From{kind: fromStart}
	// End delivers only events committed after the subscription starts.
	End = From{kind: fromEnd}
)

// At delivers from position (or version) n, inclusive.
func At(n uint64) From { return From{kind: fromAt, n: n} }

// After delivers from the event after position (or version) n: the form in
// which a consumer resumes from the last event or checkpoint it processed.
func After(n uint64) From {
	if n == math.MaxUint64 {
		return End
	}
	return From{kind: fromAfter, n: n}
}

// first returns the first number to read, and false for End.
func (f From) first() (uint64, bool) {
	switch f.kind {
	case fromAt:
		return f.n, true
	case fromAfter:
		return f.n + 1, true
	case fromEnd:
		return 0, false
	}
	return 0, true
}

// First returns the first position (or version) f delivers, and false for
// End, which depends on when the subscription starts.
func (f From) First() (uint64, bool) { return f.first() }
