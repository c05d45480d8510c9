package cairn

import (
	"fmt"
	"strconv"
)

// ExpectedVersion is the condition an append places on the stream's current
// version. Its zero value is [Any]. Use [NoStream], [Any], [StreamExists] or
// [Exact]; [ParseExpectedVersion] converts the numeric form used on the wire,
// in JSON and on the command line (-1, -2, -4, or n ≥ 0).
type ExpectedVersion struct {
	kind expectKind
	n    int64
}

type expectKind uint8

const (
	kindAny expectKind = iota
	kindNoStream
	kindStreamExists
	kindExact
	kindInvalid
)

// The numeric values of the special expectations, as in reckon_db and the
// KurrentDB protocol.
const (
	noStreamValue     = -1
	anyValue          = -2
	streamExistsValue = -4
)

var (
	// Any skips the check.
	Any = ExpectedVersion{kind: kindAny}
	// NoStream requires that the stream does not exist (it was never
	// written, or it was soft-deleted).
	NoStream = ExpectedVersion{kind: kindNoStream}
	// StreamExists requires that the stream exists, at any version.
	StreamExists = ExpectedVersion{kind: kindStreamExists}
)

// Exact requires the stream's current version (the version of its last
// event) to be v. A negative v gives an expectation that every append
// rejects as invalid.
func Exact(v int64) ExpectedVersion {
	if v < 0 {
		return ExpectedVersion{kind: kindInvalid, n: v}
	}
	return ExpectedVersion{kind: kindExact, n: v}
}

// ParseExpectedVersion converts the numeric form: -1 NoStream, -2 Any,
// -4 StreamExists, n ≥ 0 exact.
func ParseExpectedVersion(n int64) (ExpectedVersion, error) {
	switch {
	case n >= 0:
		return Exact(n), nil
	case n == noStreamValue:
		return NoStream, nil
	case n == anyValue:
		return Any, nil
	case n == streamExistsValue:
		return StreamExists, nil
	}
	return ExpectedVersion{kind: kindInvalid, n: n}, invalidf("expected", "%d is not an expected version: use -1 (no stream), -2 (any), -4 (stream exists) or an exact version ≥ 0", n)
}

// Int64 returns the numeric form of e.
func (e ExpectedVersion) Int64() int64 {
	switch e.kind {
	case kindAny:
		return anyValue
	case kindNoStream:
		return noStreamValue
	case kindStreamExists:
		return streamExistsValue
	}
	return e.n
}

// Version returns the exact version e requires, and whether e is exact.
func (e ExpectedVersion) Version() (int64, bool) {
	return e.n, e.kind == kindExact
}

// IsAny reports whether e is [Any].
func (e ExpectedVersion) IsAny() bool { return e.kind == kindAny }

// IsNoStream reports whether e is [NoStream].
func (e ExpectedVersion) IsNoStream() bool { return e.kind == kindNoStream }

// IsStreamExists reports whether e is [StreamExists].
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == kindStreamExists }

// Valid reports whether e is one of the four expectations.
func (e ExpectedVersion) Valid() bool { return e.kind != kindInvalid }

// String returns "any", "no stream", "stream exists" or the exact version.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case kindAny:
		return "any"
	case kindNoStream:
		return "no stream"
	case kindStreamExists:
		return "stream exists"
	case kindExact:
		return strconv.FormatInt(e.n, 10)
	}
	return fmt.Sprintf("invalid(%d)", e.n)
}

// Check returns nil when a stream whose current version is current (-1 when
// the stream does not exist or was soft-deleted) satisfies e, and a
// [*WrongExpectedVersionError] otherwise. Engines call it under the same lock
// or transaction that performs the append.
func (e ExpectedVersion) Check(stream string, current int64) error {
	ok := false
	switch e.kind {
	case kindAny:
		ok = true
	case kindNoStream:
		ok = current < 0
	case kindStreamExists:
		ok = current >= 0
	case kindExact:
		ok = current == e.n
	}
	if ok {
		return nil
	}
	return &WrongExpectedVersionError{Stream: stream, Expected: e, Actual: current}
}
