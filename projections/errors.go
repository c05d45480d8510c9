package projections

import (
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
)

// Errors of the Manager. They are wrapped with the projection's name; test
// with errors.Is.
var (
	// ErrNotFound: no projection has that name.
	ErrNotFound = errors.New("projection not found")
	// ErrExists: Create found a projection of that name.
	ErrExists = errors.New("projection already exists")
	// ErrRunning: the operation needs a stopped or faulted projection
	// (Delete, as in KurrentDB).
	ErrRunning = errors.New("projection is running")
	// ErrBuiltin: the operation does not apply to a system projection
	// (Create, Update, Delete of a name starting with '$').
	ErrBuiltin = errors.New("system projection")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("projections manager closed")
)

// Error reports a failed operation on one projection; it unwraps to one of
// the sentinel errors above or to the store's error.
type Error struct {
	Op   string
	Name string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s projection %q: %v", e.Op, e.Name, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func opError(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Name: name, Err: err}
}

func invalidf(field, format string, args ...any) error {
	return &cairn.InvalidArgumentError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func asInvalid(err error, target **cairn.InvalidArgumentError) bool { return errors.As(err, target) }
