package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairndb/cairn"
	"github.com/jackc/pgx/v5"
)

// backfillBatch is how many events backfillIndex reads at a time, and how
// many runs it writes at a time.
var backfillBatch = 10000

// backfillIndex files the events stored before migration 6 in the index,
// in the migration's transaction: it reads every event in position order
// through a cursor, computes its keys with cairn.IndexKeys as appends do,
// and writes runs of consecutive positions per key to a staging table,
// numbered at the end in position order. Only the keys of the last event
// are held in memory. Events that Compact removed before the migration are
// gone and are not filed.
func backfillIndex(ctx context.Context, tx pgx.Tx, schema string) error {
	stage := "cairn_index_backfill"
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+stage+` (kind smallint, value text COLLATE "C", position bigint, count int) ON COMMIT DROP`); err != nil {
		return err
	}
	// Metadata is read only where it may hold a correlation id.
	if _, err := tx.Exec(ctx, `DECLARE cairn_backfill NO SCROLL CURSOR FOR
		SELECT c.position + x.n - 1, c.stream, c.version + x.n - 1, coalesce(x.type, c.type), x.tags,
			CASE WHEN position('"$correlationId"'::bytea IN x.meta) > 0 THEN x.meta END
		FROM `+schema+`.chunks c
		CROSS JOIN LATERAL unnest(c.ids, c.types, c.metadata, c.tags) WITH ORDINALITY AS x(id, type, meta, tags, n)
		ORDER BY c.position, x.n`); err != nil {
		return err
	}
	type run struct {
		key      cairn.IndexKey
		position int64
		count    int32
	}
	var (
		open, next []run // the runs of the last event's keys, and of this one's
		done       [][]any
		keys       []cairn.IndexKey
		last       int64 = -1
	)
	flush := func() error {
		if len(done) == 0 {
			return nil
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{stage}, []string{"kind", "value", "position", "count"}, pgx.CopyFromRows(done))
		done = done[:0]
		return err
	}
	closeRun := func(r run) {
		done = append(done, []any{int16(r.key.Kind), keyValue(r.key.Value), r.position, r.count})
	}
	for {
		rows, err := tx.Query(ctx, fmt.Sprintf("FETCH %d FROM cairn_backfill", backfillBatch))
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			n++
			var (
				pos, version int64
				stream, typ  string
				tags         *string
				meta         []byte
			)
			if err := rows.Scan(&pos, &stream, &version, &typ, &tags, &meta); err != nil {
				rows.Close()
				return err
			}
			if pos <= last {
				rows.Close()
				return fmt.Errorf("backfill index: event at %d read after %d", pos, last)
			}
			last = pos
			e := cairn.EventData{Type: typ, Metadata: meta}
			if tags != nil {
				e.Tags = strings.Split(*tags, tagSep)
			}
			keys = cairn.IndexKeys(keys[:0], stream, version, &e)
			next = next[:0]
			for _, k := range keys {
				r := run{key: k, position: pos, count: 1}
				for i, o := range open {
					if o.key == k && o.position+int64(o.count) == pos {
						r = o
						r.count++
						open[i].count = 0 // extended, not closed
						break
					}
				}
				next = append(next, r)
			}
			for _, o := range open {
				if o.count > 0 {
					closeRun(o)
				}
			}
			open, next = next, open
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
		if n < backfillBatch {
			break
		}
	}
	for _, o := range open {
		closeRun(o)
	}
	if err := flush(); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CLOSE cairn_backfill`); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.index_runs (kind, value, number, position, count)
		SELECT kind, value, sum(count) OVER (PARTITION BY kind, value ORDER BY position) - count, position, count FROM `+stage)
	return err
}
