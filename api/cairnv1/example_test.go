package cairnv1_test

import (
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/api/cairnv1"
)

// A server turns a Store's error into a gRPC status; the client turns the
// status back into the typed error, facts included.
func ExampleStatus() {
	sent := &cairn.WrongExpectedVersionError{Stream: "order-1", Expected: cairn.Exact(3), Actual: 5}
	received := cairnv1.FromStatus(cairnv1.Status(sent))

	var wev *cairn.WrongExpectedVersionError
	fmt.Println(errors.Is(received, cairn.ErrWrongExpectedVersion), errors.As(received, &wev), wev.Actual)
	// Output: true true 5
}
