package pgstore

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestCollectForwardChecksOrder feeds collectForward rows in and out of
// the order a forward read needs: each chunk's events in order from the
// first one to read, chunks in order.
func TestCollectForwardChecksOrder(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, c := range []struct {
		rows string // chunk, n, first of each row
		ok   bool
	}{
		{"", true},
		{"10,1,1 10,2,1 20,3,3 20,4,3 30,1,1", true},
		{"10,2,2 10,3,2", true},
		{"10,1,1 10,3,1", false}, // an event of the chunk skipped
		{"10,2,1", false},        // the chunk's first event to read missing
		{"10,1,1 10,2,1 10,2,1", false},
		{"20,1,1 10,1,1", false}, // chunks out of order
		{"10,2,1 10,1,1", false},
	} {
		var values []string
		for _, r := range strings.Fields(c.rows) {
			values = append(values, fmt.Sprintf("(%s)", r))
		}
		sql := `SELECT 0::bigint, 's', 0::bigint, gen_random_uuid(), 'T', 0::smallint, ''::bytea, NULL::bytea, NULL::text[], now(), 0::bigint, 0::bigint, 0::bigint WHERE false`
		if len(values) > 0 {
			sql = `SELECT v.chunk + v.n - 1, 's', v.chunk + v.n - 1, gen_random_uuid(), 'T', 0::smallint, ''::bytea, NULL::bytea, NULL::text[], now(), v.chunk, v.n, v.first
				FROM (VALUES ` + strings.Join(values, ", ") + `) AS v(chunk, n, first)`
		}
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		events, ok, err := collectForward(rows)
		if err != nil || ok != c.ok {
			t.Errorf("rows %q: ok = %v, %v; want %v", c.rows, ok, err, c.ok)
		}
		if ok && len(events) != len(values) {
			t.Errorf("rows %q: %d events", c.rows, len(events))
		}
	}
}
