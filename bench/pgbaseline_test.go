package bench

import (
	"context"
	neturl "net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPostgresBaseline appends through the baseline with single-row and
// multi-row INSERTs, reads everything back, and checks that Close drops the
// baseline's schema.
func TestPostgresBaseline(t *testing.T) {
	url := os.Getenv("CAIRN_TEST_POSTGRES")
	if url == "" {
		const how = "set CAIRN_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CAIRN_TEST_POSTGRES is not set: " + how)
		}
		t.Skip(how)
	}
	ctx := context.Background()
	// The engine's schema parameter is not the baseline's business.
	withSchema := url
	if u, err := neturl.Parse(url); err == nil && u.Scheme != "" {
		q := u.Query()
		q.Set("schema", "ignored")
		u.RawQuery = q.Encode()
		withSchema = u.String()
	}
	b, err := NewPostgresBaseline(ctx, withSchema)
	if err != nil {
		t.Fatal(err)
	}
	lat, _, err := b.Append(ctx, 3, 4, 1, 256)
	if err != nil || len(lat) != 12 {
		t.Fatalf("single-row appends: %d latencies, %v", len(lat), err)
	}
	lat, _, err = b.Append(ctx, 2, 3, 50, 256)
	if err != nil || len(lat) != 6 {
		t.Fatalf("multi-row appends: %d latencies, %v", len(lat), err)
	}
	n, _, err := b.ReadAll(ctx)
	if err != nil || n != 12+300 {
		t.Fatalf("ReadAll = %d records, %v; want 312", n, err)
	}
	schema := b.schema
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE quote_ident(nspname) = $1)", schema).Scan(&left); err != nil || left {
		t.Fatalf("schema %s left behind: %v, %v", schema, left, err)
	}
}
