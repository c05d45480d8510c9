package invariants_test

import (
	"fmt"

	"github.com/cairndb/cairn/internal/invariants"
)

// A check guarded by Enabled costs nothing in a production build; in a
// build with -race or -tags invariants a breach panics with a Violation.
func Example() {
	published := uint64(10)
	publish := func(next uint64) {
		if invariants.Enabled && next < published {
			invariants.Failf("position %d published after %d", next, published)
		}
		published = next
	}
	defer func() {
		if v := recover(); v != nil {
			fmt.Println(v)
		}
	}()
	publish(12)
	publish(11)
	fmt.Println("a production build carries on")
}
