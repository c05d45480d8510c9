package pgstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/pgstore/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// growing are the tables that grow with the store: a scan of one of them
// whole costs an append time in proportion to the store's size.
var growing = regexp.MustCompile(`(Seq Scan|Bitmap Heap Scan|Index Scan|Index Only Scan)( Backward)? (using \w+ )?on (index_runs|streams|chunks)\b`)

// TestAppendPlansUseIndexes: every statement of append_one and
// append_group reaches the tables that grow with the store (index_runs,
// streams, chunks) through an index lookup, even when the statistics say
// they are tiny. PostgreSQL keeps a function's plans for the life of its
// connection, until the table's statistics next change; plans made while a
// new store's tables were a page each, a sequential scan or a hash join
// being the cheapest then, would otherwise scan them whole at every append
// once they had grown, until autovacuum analysed them again.
//
// The plans are those auto_explain reports for each statement the calls
// run, on a connection of the test's own.
func TestAppendPlansUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, pool := migratedTo(t, len(migrations))
	for i := range 3 {
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), cairn.Any, []cairn.EventData{taggedEvent("t")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range []string{s.indexRuns, s.streams, s.chunks} {
		if _, err := pool.Exec(ctx, `ANALYZE `+table); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu    sync.Mutex
		plans []string
	)
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		plans = append(plans, n.Message)
		mu.Unlock()
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `LOAD 'auto_explain'`); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" && os.Getenv("CI") != "true" {
			t.Skip("LOAD 'auto_explain' needs a superuser, which " + pgtest.EnvURL + "'s role is not (.ci/postgres.sh makes one)")
		}
		t.Fatal(err)
	}
	for _, set := range []string{
		`SET auto_explain.log_min_duration = 0`,
		`SET auto_explain.log_nested_statements = on`,
		`SET auto_explain.log_level = notice`,
		`SET client_min_messages = notice`,
	} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}

	event := func(tags ...string) []cairn.EventData { return []cairn.EventData{taggedEvent(tags...)} }
	reqs := map[string][]cairn.AppendRequest{
		"append_one, a stream that exists":     {{Stream: "order-0", Expected: cairn.Exact(0), Events: event("t")}},
		"append_one, a new stream":             {{Stream: "order-9", Expected: cairn.NoStream, Events: event("u")}},
		"append_one, a wrong expected version": {{Stream: "order-1", Expected: cairn.Exact(5), Events: event()}},
		"append_group": {
			{Stream: "order-0", Expected: cairn.Exact(0), Events: event("t")},
			{Stream: "order-8", Expected: cairn.NoStream, Events: event("v")},
			{Stream: "order-2", Expected: cairn.Any, Events: event("t"), Condition: onTag("w")},
			{Stream: "order-1", Expected: cairn.Exact(5), Events: event()},
		},
	}
	channel := s.channel
	for name, rs := range reqs {
		mu.Lock()
		plans = plans[:0]
		mu.Unlock()
		var (
			sql  string
			args []any
		)
		if strings.HasPrefix(name, "append_one") {
			sql, args = s.oneCall(newPending(rs[0]), &channel)
		} else {
			group := make([]*pending, len(rs))
			for i, r := range rs {
				group[i] = newPending(r)
			}
			sql, args, _ = s.groupCall(group, &channel)
		}
		// A plpgsql function plans a statement when it first runs it;
		// append_one keeps a generic plan from the first run, append_group
		// plans for each run's values five times before it may keep one.
		for range 7 {
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				rows, err := tx.Query(ctx, sql, args...)
				if err != nil {
					return err
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		mu.Lock()
		got := strings.Join(plans, "\n")
		mu.Unlock()
		reach := []string{"streams", "index_runs", "chunks"}
		if strings.Contains(name, "wrong expected version") {
			reach = []string{"streams", "chunks"} // and its retry lookup
		}
		for _, table := range reach {
			if !regexp.MustCompile(`\bon ` + table + `\b`).MatchString(got) {
				t.Fatalf("%s: no plan reached %s; auto_explain reported:\n%s", name, table, got)
			}
		}
		for _, scan := range wholeScans(got) {
			t.Errorf("%s: %s", name, scan)
		}
		if t.Failed() {
			t.Fatalf("auto_explain reported:\n%s", got)
		}
	}
}

// wholeScans returns the nodes of the plans that read a growing table
// otherwise than by a lookup: a sequential or bitmap scan, or an index
// scan without an index condition (the whole index, in order).
func wholeScans(plans string) []string {
	var found []string
	lines := strings.Split(plans, "\n")
	indent := func(s string) int { return len(s) - len(strings.TrimLeft(s, " \t->")) }
	for i, line := range lines {
		m := growing.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		node := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "->"))
		if m[1] == "Seq Scan" || m[1] == "Bitmap Heap Scan" {
			found = append(found, node+": scans "+m[4]+" whole")
			continue
		}
		cond := false
		for _, detail := range lines[i+1:] {
			if indent(detail) <= indent(line) || strings.Contains(detail, "->") {
				break
			}
			cond = cond || strings.Contains(detail, "Index Cond:")
		}
		if !cond {
			found = append(found, node+": reads "+m[4]+"'s index whole")
		}
	}
	return found
}

var errRollback = errors.New("rolled back")
