package pgstore_test

import (
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/storetest"
)

func TestConformance(t *testing.T) {
	pgtest.URL(t)
	storetest.TestBackend(t, func(t *testing.T) cairn.Backend {
		return newStore(t)
	})
}
