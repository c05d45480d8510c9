// Package pgtest gives tests a real PostgreSQL database to run cairn's
// PostgreSQL engine on, the way net/http/httptest gives them a server.
//
// The database comes from the CAIRN_TEST_POSTGRES environment variable (a
// postgres:// URL). Without it, a test that asks for one is skipped with a
// message saying how to enable it, unless CI=true, where it fails: a CI run
// must not pass by skipping the PostgreSQL tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable that names the test database.
const EnvURL = "CAIRN_TEST_POSTGRES"

// URL returns the test database's URL, or skips t (fails it under CI=true)
// when there is none.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		const how = "set " + EnvURL + " to a PostgreSQL URL to run the PostgreSQL tests, " +
			"e.g. " + EnvURL + "='postgres://cairn:cairn@127.0.0.1:5432/cairn?sslmode=disable'"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but " + EnvURL + " is not set: " + how)
		}
		t.Skip(how)
	}
	return u
}

// Schema returns the name of a fresh schema in the test database, which is
// dropped with everything in it when t ends. prefix starts the name, so that
// a leftover schema says which tests made it.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	url := URL(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := prefix + "_" + hex.EncodeToString(b[:])
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
