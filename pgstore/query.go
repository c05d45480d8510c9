package pgstore

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/cairndb/cairn"
)

// ReadQuery implements [cairn.Querier]. A query that matches every event
// reads the log. Otherwise one statement reads, for each item, the lists
// that the schema's query_scans chooses (the list of one of its tags or
// those of its types, whichever hold the fewest entries), the events at
// their positions that pass the item (item_matches), at most count of them
// per list; the lists are merged here in position order, an event that
// several items match once.
//
// An event of a system stream has no type in the index (cairn.IndexKeys),
// so it matches no item with types: only items of tags alone select it.
func (s *Store) ReadQuery(ctx context.Context, q cairn.Query, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	if q.All() {
		return s.ReadAll(ctx, from, count, dir)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if count <= 0 || (dir == cairn.Forward && from > math.MaxInt64) {
		return nil, nil
	}
	start := int64(min(from, math.MaxInt64))
	types, tags, _ := queryArgs(q, nil, nil)
	var events []cairn.Event
	ok := false
	for _, sorted := range []bool{false, true} {
		var err error
		events, ok, err = s.readQuery(ctx, s.readQuerySQL(dir, sorted), dir, types, tags, start, count)
		if err != nil {
			return nil, s.wrap("read query", err)
		}
		if ok {
			break
		}
	}
	if !ok {
		return nil, errors.New("pgstore: read query: events of a list out of order")
	}
	if dir == cairn.Forward {
		slices.SortFunc(events, func(a, b cairn.Event) int { return cmp.Compare(a.Position, b.Position) })
	} else {
		slices.SortFunc(events, func(a, b cairn.Event) int { return cmp.Compare(b.Position, a.Position) })
	}
	events = slices.CompactFunc(events, func(a, b cairn.Event) bool { return a.Position == b.Position })
	return events[:min(len(events), count)], nil
}

// readQuery runs the query of readQuerySQL. ok reports whether the events
// of every list came in order (always so when the query sorts them).
func (s *Store) readQuery(ctx context.Context, sql string, dir cairn.Direction, types, tags []*string, from int64, count int) (events []cairn.Event, ok bool, err error) {
	rows, err := s.pool.Query(ctx, sql, types, tags, from, count)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	type list struct {
		item  int32
		kind  int16
		value string
	}
	var last list
	var lastPos uint64
	for rows.Next() {
		var l list
		e, err := scanEvent(rows, &l.item, &l.kind, &l.value)
		if err != nil {
			return nil, false, err
		}
		if len(events) > 0 && l == last {
			if (dir == cairn.Forward && e.Position <= lastPos) || (dir == cairn.Backward && e.Position >= lastPos) {
				return nil, false, nil
			}
		}
		last, lastPos = l, e.Position
		events = append(events, e)
	}
	return events, true, rows.Err()
}

// readQuerySQL reads at most $4 durable events from position $3 on in
// direction dir from each list query_scans chooses for the query ($1 its items'
// types, $2 their tags), that pass the item. The lists are read run by run
// in position order; a run's events are taken out of the chunks that hold
// them by subscript (positionColumns), which for the scattered events of a
// tag costs less than expanding their chunks. The query orders the rows by
// run only, the order in which runs, chunks and positions are generated
// within it giving the rest, as forward log reads do (see forward), unless
// sorted is set; readQuery checks the order.
func (s *Store) readQuerySQL(dir cairn.Direction, sorted bool) string {
	var runs, chunks, series, order string
	// A run ends at the durable mark: later writes may have lengthened it
	// with entries not durable yet (see migration 8).
	end := `least(e.position + e.count, ` + s.durableMark + `)`
	if dir == cairn.Forward {
		runs = `e.position >= coalesce((SELECT max(e2.position) FROM ` + s.indexRuns + ` e2
				WHERE e2.kind = l.kind AND e2.value = l.value AND e2.position <= $3::bigint), $3::bigint)
			AND e.position < ` + s.durableMark
		chunks = s.chunksSQL(`greatest(e.position, $3::bigint)`, end+` - 1`, cairn.Forward)
		series = `greatest(e.position, c.position, $3::bigint), least(` + end + `, c.position + c.count) - 1`
		order = `e.position`
		if sorted {
			order += `, g.p`
		}
	} else {
		runs = `e.position <= $3::bigint AND e.position < ` + s.durableMark
		chunks = s.chunksSQL(`e.position`, `least($3::bigint, `+end+` - 1)`, cairn.Backward)
		series = `least(` + end + ` - 1, c.position + c.count - 1, $3::bigint), greatest(e.position, c.position), -1`
		order = `e.position DESC`
		if sorted {
			order += `, g.p DESC`
		}
	}
	return `SELECT l.item, l.kind, l.value, ev.*
		FROM ` + s.fn("query_scans") + `($1::text[], $2::text[]) l
		CROSS JOIN LATERAL (
			SELECT ` + positionColumns + `
			FROM ` + s.indexRuns + ` e
			CROSS JOIN LATERAL (` + chunks + `) c
			CROSS JOIN LATERAL generate_series(` + series + `) AS g(p)
			CROSS JOIN LATERAL (SELECT (g.p - c.position + 1)::int AS k) k
			WHERE e.kind = l.kind AND e.value = l.value AND ` + runs + `
				AND ` + s.fn("item_matches") + `(c.stream, coalesce(c.types[k.k], c.type), c.tags[k.k], ($1::text[])[l.item], ($2::text[])[l.item])
			ORDER BY ` + order + `
			LIMIT $4
		) ev`
}

// chunksSQL selects the chunks that may hold the positions lo … hi in
// direction dir: the last one that starts at or before lo, and those that
// start after lo up to hi. The one that holds a single event of a run is
// found with one probe of the chunks' key.
func (s *Store) chunksSQL(lo, hi string, dir cairn.Direction) string {
	first := `(SELECT * FROM ` + s.chunks + ` c WHERE c.position <= ` + lo + ` ORDER BY c.position DESC LIMIT 1)`
	rest := `(SELECT * FROM ` + s.chunks + ` c WHERE ` + hi + ` > ` + lo + ` AND c.position > ` + lo + ` AND c.position <= ` + hi + ` ORDER BY c.position`
	if dir == cairn.Forward {
		return first + ` UNION ALL ` + rest + `)`
	}
	return rest + ` DESC) UNION ALL ` + first
}

// positionColumns are the columns of expandColumns for the event at
// position g.p of chunk c, the k.k-th of the chunk's arrays.
const positionColumns = `g.p, c.stream, c.version + k.k - 1, c.ids[k.k], coalesce(c.types[k.k], c.type),
	coalesce(c.ctypes[k.k], c.ctype), c.data[k.k], c.metadata[k.k],
	CASE WHEN c.tags[k.k] IS NULL THEN NULL ELSE string_to_array(c.tags[k.k], E'\x1f') END, c.created`
