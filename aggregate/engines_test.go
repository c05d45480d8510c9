package aggregate_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/memstore"
)

// engine opens a fresh store on one of cairn's engines for a test.
type engine struct {
	name string
	open func(t *testing.T) *cairn.Store
}

// engines returns the engines the aggregate tests run on.
func engines(t *testing.T) []engine {
	return []engine{
		{"memory", openMemory},
	}
}

func openMemory(t *testing.T) *cairn.Store {
	s := memstore.Open()
	t.Cleanup(func() { s.Close() })
	return s
}
