package memstore_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
	"github.com/cairndb/cairn/storetest"
)

func TestConformance(t *testing.T) {
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		b := memstore.New()
		t.Cleanup(func() { b.Close() })
		return b
	})
}
