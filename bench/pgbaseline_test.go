package bench

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// postgresURL returns the PostgreSQL URL of the tests, or skips.
func postgresURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("CAIRN_TEST_POSTGRES")
	if url == "" {
		const how = "set CAIRN_TEST_POSTGRES to a PostgreSQL URL to run the PostgreSQL tests"
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but CAIRN_TEST_POSTGRES is not set: " + how)
		}
		t.Skip(how)
	}
	return url
}

// TestPostgresBaseline appends through the baseline with single-row and
// multi-row INSERTs, reads everything back, and checks that Close drops the
// baseline's schema.
func TestPostgresBaseline(t *testing.T) {
	url := postgresURL(t)
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

// TestOrderingFloor appends through M1's ordering floor from several
// connections at once: every append gets its own position, the positions
// are gapless, each stream's versions follow its appends, the durable mark
// reaches the head, and an append whose expected version does not hold
// fails and writes nothing.
func TestOrderingFloor(t *testing.T) {
	url := postgresURL(t)
	ctx := context.Background()
	b, err := NewPostgresBaseline(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := b.floorTables(ctx); err != nil {
		t.Fatal(err)
	}
	const writers, appends = 4, 25
	data := make([]byte, EventBytes)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		stream := fmt.Sprintf("floor-%d", w)
		floor, err := floorAppender(ctx, conn, b.schema, stream, data)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := range appends {
				if errs[w] = floor(int64(i) - 1); errs[w] != nil {
					return
				}
			}
			// A stale expected version is refused.
			if err := floor(0); err == nil || !strings.Contains(err.Error(), "expected version 0 does not hold") {
				errs[w] = fmt.Errorf("an append expecting version 0 of %s, at version %d: %v", stream, appends-1, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n, lo, hi, mark, head int64
	var versionsOK bool
	q := `SELECT count(*), min(position), max(position),
		bool_and(version = rank - 1),
		(SELECT max(next) FROM ` + b.schema + `.floor_durable), (SELECT next FROM ` + b.schema + `.floor_head)
		FROM (SELECT position, version, rank() OVER (PARTITION BY stream ORDER BY position) AS rank FROM ` + b.schema + `.floor_events) e`
	if err := b.pool.QueryRow(ctx, q).Scan(&n, &lo, &hi, &versionsOK, &mark, &head); err != nil {
		t.Fatal(err)
	}
	if n != writers*appends || lo != 0 || hi != n-1 {
		t.Errorf("%d events at positions %d–%d; want %d at 0–%d, gapless", n, lo, hi, writers*appends, writers*appends-1)
	}
	if !versionsOK {
		t.Error("a stream's versions do not follow its appends in the order of their positions")
	}
	if mark != n || head != n {
		t.Errorf("durable mark %d, head %d; want both %d", mark, head, n)
	}
}

// TestLoneFloor runs W1's shape through the ordering floor: every append
// is timed, the positions are gapless, and each stream's versions follow
// its appends from the version it was created at.
func TestLoneFloor(t *testing.T) {
	url := postgresURL(t)
	ctx := context.Background()
	b, err := NewPostgresBaseline(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	const streams, appends = 3, 20
	lat, err := b.loneFloor(ctx, streams, appends, EventBytes)
	if err != nil || len(lat) != appends {
		t.Fatalf("loneFloor: %d latencies, %v; want %d", len(lat), err, appends)
	}
	var n, lo, hi, nstreams, head int64
	var versionsOK bool
	q := `SELECT count(*), min(position), max(position), count(DISTINCT stream),
		bool_and(version = rank), (SELECT next FROM ` + b.schema + `.floor_head)
		FROM (SELECT stream, position, version, rank() OVER (PARTITION BY stream ORDER BY position) AS rank FROM ` + b.schema + `.floor_events) e`
	if err := b.pool.QueryRow(ctx, q).Scan(&n, &lo, &hi, &nstreams, &versionsOK, &head); err != nil {
		t.Fatal(err)
	}
	if n != appends || lo != 0 || hi != appends-1 || head != appends {
		t.Errorf("%d events at positions %d–%d, head %d; want %d at 0–%d, gapless", n, lo, hi, head, appends, appends-1)
	}
	if nstreams != streams || !versionsOK {
		t.Errorf("%d streams, versions following the appends from 1: %v; want %d, true", nstreams, versionsOK, streams)
	}
}
