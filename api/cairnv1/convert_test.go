package cairnv1_test

import (
	"errors"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
)

// Typed errors survive the trip through a gRPC status.
func TestErrorRoundTrip(t *testing.T) {
	wev := &cairn.WrongExpectedVersionError{Stream: "s", Expected: cairn.Exact(3), Actual: 5}
	cases := []error{
		wev,
		&cairn.InvalidArgumentError{Field: "events[0].type", Reason: "must not be empty"},
		cairn.NotFound("read", "s"),
		cairn.Deleted("append to", "s"),
		&cairn.StreamError{Op: "append to", Stream: "s", Err: cairn.ErrDuplicateEvent},
		cairn.ErrClosed,
		&cairn.BatchError{Errs: []error{nil, wev}},
	}
	for _, want := range cases {
		got := cairnv1.FromStatus(cairnv1.Status(want))
		if got.Error() != want.Error() {
			t.Errorf("round trip of %q gave %q", want, got)
		}
		for _, sentinel := range []error{cairn.ErrWrongExpectedVersion, cairn.ErrInvalidArgument, cairn.ErrStreamNotFound, cairn.ErrStreamDeleted, cairn.ErrDuplicateEvent, cairn.ErrClosed} {
			if errors.Is(got, sentinel) != errors.Is(want, sentinel) {
				t.Errorf("round trip of %q: errors.Is(_, %v) changed", want, sentinel)
			}
		}
	}
	var back *cairn.WrongExpectedVersionError
	if !errors.As(cairnv1.FromStatus(cairnv1.Status(wev)), &back) || *back != *wev {
		t.Errorf("WrongExpectedVersionError came back as %+v", back)
	}
}
