package cairn

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by the Store and engines wrap them, so
// test with errors.Is; the typed errors below carry the details.
var (
	// ErrWrongExpectedVersion: the stream's version did not satisfy the
	// append's expectation. See [WrongExpectedVersionError].
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrConditionFailed is matched by a [*ConditionError]: an append's
	// [AppendCondition] failed.
	ErrConditionFailed = errors.New("append condition failed")
	// ErrStreamNotFound: the stream does not exist or was soft-deleted.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrStreamDeleted: the stream was tombstoned (hard-deleted) and can
	// never be written or read again.
	ErrStreamDeleted = errors.New("stream deleted")
	// ErrInvalidArgument: an input was rejected before anything was written.
	// See [InvalidArgumentError].
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrDuplicateEvent: the first event's ID was already recorded, but the
	// append is not a repeat of the append that recorded it.
	ErrDuplicateEvent = errors.New("duplicate event id")
	// ErrNotSupported: the engine does not implement an optional capability
	// and the Store has no fallback for it.
	ErrNotSupported = errors.New("not supported by this engine")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
	// ErrCorrupt: stored data failed an integrity check. It is never
	// returned as an event.
	ErrCorrupt = errors.New("corrupt data")
)

// WrongExpectedVersionError reports a failed expected-version check.
type WrongExpectedVersionError struct {
	// Op is the operation that was refused: "append to" when empty,
	// "delete" or "tombstone".
	Op       string
	Stream   string
	Expected ExpectedVersion
	// Actual is the stream's current version, -1 when it does not exist.
	Actual int64
}

func (e *WrongExpectedVersionError) Error() string {
	actual := fmt.Sprint(e.Actual)
	if e.Actual < 0 {
		actual = "no stream"
	}
	op := e.Op
	if op == "" {
		op = "append to"
	}
	return fmt.Sprintf("%s %q: wrong expected version: expected %s, actual %s", op, e.Stream, e.Expected, actual)
}

// Unwrap returns [ErrWrongExpectedVersion].
func (e *WrongExpectedVersionError) Unwrap() error { return ErrWrongExpectedVersion }

// ConditionError reports an append refused by its [AppendCondition]: an
// event matching the condition's query was recorded after the position it
// allows. Nothing was written.
type ConditionError struct {
	// Position is the position of the first event that failed the
	// condition.
	Position uint64
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("append condition failed: the event at position %d matches its query", e.Position)
}

// Unwrap returns [ErrConditionFailed].
func (e *ConditionError) Unwrap() error { return ErrConditionFailed }

// StreamError reports an operation on a stream that failed with one of the
// sentinel errors (typically [ErrStreamNotFound] or [ErrStreamDeleted]).
type StreamError struct {
	Op     string
	Stream string
	Err    error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.Op, e.Stream, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// NotFound returns the error for an operation on a stream that does not exist.
func NotFound(op, stream string) error {
	return &StreamError{Op: op, Stream: stream, Err: ErrStreamNotFound}
}

// Deleted returns the error for an operation on a tombstoned stream.
func Deleted(op, stream string) error {
	return &StreamError{Op: op, Stream: stream, Err: ErrStreamDeleted}
}

// InvalidArgumentError names the input that was rejected and why.
type InvalidArgumentError struct {
	// Field is the input's name, such as "stream", "events[2].type" or
	// "count".
	Field  string
	Reason string
}

func (e *InvalidArgumentError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns [ErrInvalidArgument].
func (e *InvalidArgumentError) Unwrap() error { return ErrInvalidArgument }

func invalidf(field, format string, args ...any) error {
	return &InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// BatchError reports a multi-stream append that failed. Nothing was written
// when the engine's batch is atomic. Errs has one entry per request, in order:
// nil for a request that would have succeeded, its error otherwise.
type BatchError struct {
	Errs []error
}

func (e *BatchError) Error() string {
	var parts []string
	for i, err := range e.Errs {
		if err != nil {
			parts = append(parts, fmt.Sprintf("[%d] %v", i, err))
		}
	}
	return "append batch: " + strings.Join(parts, "; ")
}

// Unwrap returns the requests' errors, so errors.Is and errors.As see them.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
