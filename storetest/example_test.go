package storetest_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/storetest"
)

// An engine's conformance test: one call, with a constructor that returns a
// fresh engine for each rule.
func ExampleTestBackend() {
	_ = func(t *testing.T) {
		storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
			b := memstore.New()
			t.Cleanup(func() { b.Close() })
			return b
		})
	}
}
