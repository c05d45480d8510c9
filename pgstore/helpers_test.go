package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/jackc/pgx/v5"
)

// testURL returns the database the tests use, from CAIRN_TEST_POSTGRES. It
// skips the test when it is unset, or fails it under CI=true.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("CAIRN_TEST_POSTGRES")
	if u == "" {
		const how = "set CAIRN_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests, " +
			"e.g. CAIRN_TEST_POSTGRES='postgres://cairn:cairn@127.0.0.1:5432/cairn?sslmode=disable'"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CAIRN_TEST_POSTGRES is not set: " + how)
		}
		t.Skip(how)
	}
	return u
}

// newSchema returns a fresh schema name and drops the schema when the test
// ends.
func newSchema(t testing.TB) string {
	t.Helper()
	url := testURL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "cairn_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openSchema opens an engine on schema and closes it when the test ends.
func openSchema(t testing.TB, schema string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	opts.Schema = schema
	s, err := pgstore.Open(context.Background(), testURL(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, cairn.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens an engine on a fresh schema.
func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	return openSchema(t, newSchema(t), pgstore.Options{})
}
