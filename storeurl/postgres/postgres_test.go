package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/cairndb/cairn/storeurl"
	_ "github.com/cairndb/cairn/storeurl/postgres"
)

// TestOpen opens the engine the way the cairn command does, on the schema
// the URL names.
func TestOpen(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, "cairn_test")
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	ctx := context.Background()
	s, err := storeurl.Open(ctx, url+sep+"schema="+schema, storeurl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "s", cairn.NoStream, cairn.EventData{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	if engine, ok := s.Backend().(*pgstore.Store); !ok || engine.Schema() != schema {
		t.Fatalf("storeurl opened %T", s.Backend())
	}
}

// An error about a URL never repeats its password.
func TestErrorHidesPassword(t *testing.T) {
	_, err := storeurl.Open(context.Background(), "postgres://u:s3cret@db/x?sslmode=bogus", storeurl.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}

func Example() {
	ctx := context.Background()
	store, err := storeurl.Open(ctx, "postgres://cairn:cairn@127.0.0.1:5432/cairn?sslmode=disable&schema=orders", storeurl.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	fmt.Println(store.Backend().(*pgstore.Store).Schema())
}
