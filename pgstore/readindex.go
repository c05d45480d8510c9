package pgstore

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ReadIndex implements [cairn.IndexReader]. One query reads the runs of
// the key that hold the numbers asked for and, beside each, the events
// still stored at their positions; an entry whose event Compact removed is
// returned with Found false.
func (s *Store) ReadIndex(ctx context.Context, key cairn.IndexKey, from int64, count int, dir cairn.Direction) ([]cairn.IndexedEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if count <= 0 {
		return nil, nil
	}
	if dir == cairn.Backward && from == cairn.StreamEnd {
		from = math.MaxInt64
	}
	if from < 0 {
		from = 0
	}
	if dir == cairn.Forward {
		from = min(from, math.MaxInt64-int64(count))
	}
	rows, err := s.pool.Query(ctx, s.readIndexSQL(dir), int16(key.Kind), keyValue(key.Value), from, count)
	if err != nil {
		return nil, s.wrap("read index", err)
	}
	type run struct{ number, position, count int64 }
	var runs []run
	found := map[int64]cairn.Event{}
	for rows.Next() {
		var (
			r     run
			pos   *int64
			e     cairn.Event
			ver   *int64
			id    *uuid.UUID
			typ   *string
			ctype *int16
			strm  *string
			at    *time.Time
		)
		if err := rows.Scan(&r.number, &r.position, &r.count, &pos, &strm, &ver, &id, &typ, &ctype, &e.Data, &e.Metadata, &e.Tags, &at); err != nil {
			rows.Close()
			return nil, s.wrap("read index", err)
		}
		if len(runs) == 0 || runs[len(runs)-1] != r {
			runs = append(runs, r)
		}
		if pos != nil {
			e.Position, e.StreamID, e.Version, e.ID, e.Type, e.ContentType = uint64(*pos), *strm, *ver, *id, *typ, cairn.ContentType(*ctype)
			e.Created = at.UTC()
			found[*pos] = e
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("read index", err)
	}
	slices.SortFunc(runs, func(a, b run) int { return cmp.Compare(a.number, b.number) })
	runs = slices.Compact(runs)
	out := make([]cairn.IndexedEvent, 0, min(count, 64))
	add := func(r run, n int64) {
		p := r.position + n - r.number
		e, ok := found[p]
		out = append(out, cairn.IndexedEvent{Number: n, Position: uint64(p), Event: e, Found: ok})
	}
	if dir == cairn.Forward {
		for _, r := range runs {
			for n := max(r.number, from); n < r.number+r.count && n <= from+int64(count)-1 && len(out) < count; n++ {
				add(r, n)
			}
		}
		return out, nil
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		for n := min(r.number+r.count-1, from); n >= r.number && len(out) < count; n-- {
			add(r, n)
		}
	}
	return out, nil
}

// readIndexSQL reads the durable runs of list ($1 kind, $2 value) that
// hold the numbers from $3 on in direction dir, at most $4 of them, each
// cut at the durable mark (a run that later writes lengthened may end in
// entries not durable yet, see migration 8), with the events stored at the
// positions of the numbers wanted (lo … hi), taken out of their chunks by
// subscript, or one row of NULLs when there is none.
func (s *Store) readIndexSQL(dir cairn.Direction) string {
	var runs, bounds string
	if dir == cairn.Forward {
		runs = `SELECT r.number, r.position, least(r.count::bigint, ` + s.durableMark + ` - r.position) AS count FROM ` + s.indexRuns + ` r
			WHERE r.kind = $1 AND r.value = $2 AND r.number + r.count > $3::bigint
				AND r.number >= (SELECT coalesce(max(r2.number), 0) FROM ` + s.indexRuns + ` r2
					WHERE r2.kind = $1 AND r2.value = $2 AND r2.number <= $3::bigint)
				AND r.position < ` + s.durableMark + `
			ORDER BY r.number LIMIT $4`
		bounds = `e.position + greatest($3::bigint - e.number, 0) AS lo,
			e.position + least(e.count::bigint, $3::bigint + $4::int - e.number) - 1 AS hi`
	} else {
		// top is the number to start from: $3, or the last durable one
		// when $3 is past it (StreamEnd). Numbers follow positions, so
		// the runs below it are durable too.
		top := `(SELECT least($3::bigint, coalesce((SELECT r.number + least(r.count::bigint, ` + s.durableMark + ` - r.position) FROM ` + s.indexRuns + ` r
			WHERE r.kind = $1 AND r.value = $2 AND r.position < ` + s.durableMark + `
			ORDER BY r.number DESC LIMIT 1), 0) - 1))`
		runs = `SELECT r.number, r.position, least(r.count::bigint, t.top - r.number + 1) AS count, t.top FROM ` + s.indexRuns + ` r, (SELECT ` + top + ` AS top) t
			WHERE r.kind = $1 AND r.value = $2 AND r.number <= t.top
			ORDER BY r.number DESC LIMIT $4`
		bounds = `e.position + greatest(e.top - $4::int + 1 - e.number, 0) AS lo,
			e.position + least(e.count::bigint - 1, e.top - e.number) AS hi`
	}
	return `SELECT e.number, e.position, e.count, ev.*
		FROM (` + runs + `) e
		CROSS JOIN LATERAL (SELECT ` + bounds + `) b
		LEFT JOIN LATERAL (
			SELECT ` + positionColumns + `
			FROM (` + s.chunksSQL(`b.lo`, `b.hi`, cairn.Forward) + `) c
			CROSS JOIN LATERAL generate_series(greatest(b.lo, c.position), least(b.hi, c.position + c.count - 1)) AS g(p)
			CROSS JOIN LATERAL (SELECT (g.p - c.position + 1)::int AS k) k
		) ev ON true`
}

// scanEvent scans the columns of expandColumns, after dst.
func scanEvent(rows pgx.Rows, dst ...any) (cairn.Event, error) {
	var (
		e     cairn.Event
		pos   int64
		ctype int16
		id    uuid.UUID
	)
	err := rows.Scan(append(dst, &pos, &e.StreamID, &e.Version, &id, &e.Type, &ctype, &e.Data, &e.Metadata, &e.Tags, &e.Created)...)
	e.ID = id
	e.Position = uint64(pos)
	e.ContentType = cairn.ContentType(ctype)
	e.Created = e.Created.UTC()
	return e, err
}
