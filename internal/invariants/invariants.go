// Package invariants asserts what cairn's code takes for granted: a
// position that only rises, an index that never holds a write its log
// lacks, a lock held where a function needs it.
//
// The checks are on in test builds and off in production ones. [Enabled]
// is true when the program is built with the race detector (go test
// -race) or with the build tag invariants (go test -tags invariants), and
// false otherwise; it is a constant, so a check written as
//
//	if invariants.Enabled && next < prev {
//		invariants.Failf("position %d published after %d", next, prev)
//	}
//
// is removed by the compiler from a production build, arguments and all.
// [Check] is the short form for a condition that is cheap to evaluate and a
// message that needs no formatting.
//
// A failed check panics with a [*Violation]: a broken invariant means the
// state in memory can no longer be trusted, and going on could make it
// durable. Code that must stay up in production (an event listener called
// by a library, say) reports the breach in its own way there, typically a
// log line at ERROR, and panics only when Enabled.
package invariants

import "fmt"

// Violation is the value a failed check panics with.
type Violation struct {
	// Msg says which invariant was broken, with the facts.
	Msg string
}

func (v *Violation) Error() string { return "cairn: invariant violated: " + v.Msg }

// Failf panics with a [*Violation] whose message is formatted from format
// and args. Call it only inside a branch guarded by [Enabled], where the
// check failed.
func Failf(format string, args ...any) {
	panic(&Violation{Msg: fmt.Sprintf(format, args...)})
}

// Check panics with a [*Violation] carrying msg when invariants are
// enabled and ok is false. It does nothing in a production build.
func Check(ok bool, msg string) {
	if Enabled && !ok {
		panic(&Violation{Msg: msg})
	}
}
