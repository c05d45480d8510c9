package pgstore

import (
	"context"
	"errors"
	"math"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// expandSQL reads events out of chunk rows: chunks is a query of chunk
// rows (c), where filters the events (x.n is an event's 1-based place in
// its chunk), order orders them and limit limits them. The columns are
// those collectEventsSized scans. Ordering by the chunk rows' order, then x.n,
// lets PostgreSQL stop reading chunks once it has limit events.
func (s *Store) expandSQL(chunks, where, order, limit string) string {
	return `SELECT ` + expandColumns + `
		FROM (` + chunks + `) c
		CROSS JOIN LATERAL unnest(c.ids, c.types, c.ctypes, c.data, c.metadata, c.tags)
			WITH ORDINALITY AS x(id, type, ctype, data, meta, tags, n)
		WHERE ` + where + ` ORDER BY ` + order + ` LIMIT ` + limit
}

// expandColumns are the columns of an event of chunk c, x being the event's
// elements of c's arrays.
const expandColumns = `c.position + x.n - 1, c.stream, c.version + x.n - 1, x.id, coalesce(x.type, c.type),
	coalesce(x.ctype, c.ctype), x.data, x.meta,
	CASE WHEN x.tags IS NULL THEN NULL ELSE string_to_array(x.tags, E'\x1f') END, c.created`

// forward is a forward read of events out of chunks: the chunks in the
// order of key (position or version, the same order), and for each the
// events from its first-th on, up to limit events.
//
// SQL orders the rows by chunk only (ORDER BY c.<key>), which the chunks'
// order already satisfies: PostgreSQL then streams the events without
// sorting them, which halves the server's time for a read. Within a chunk,
// the order of the events, and which of them the limit keeps, is then the
// executor's; collectForward checks that every chunk's events came in
// order from its first-th on, and the read is made again with the events
// sorted (x.n) in the query when they did not.
type forward struct {
	chunks, key, first, limit string
	// z, when set, ends the scan after the event that fills it.
	z *sizer
}

func (f forward) sql(sorted bool) string {
	order := `c.` + f.key
	if sorted {
		order += `, x.n`
	}
	return `SELECT ` + expandColumns + `, c.position, x.n, ` + f.first + `
		FROM (` + f.chunks + `) c
		CROSS JOIN LATERAL unnest(c.ids, c.types, c.ctypes, c.data, c.metadata, c.tags)
			WITH ORDINALITY AS x(id, type, ctype, data, meta, tags, n)
		WHERE x.n >= ` + f.first + ` ORDER BY ` + order + ` LIMIT ` + f.limit
}

// read runs the read through q.
func (f forward) read(ctx context.Context, q querier, args ...any) ([]cairn.Event, error) {
	var n0 int
	if f.z != nil {
		n0 = f.z.n
	}
	for _, sorted := range []bool{false, true} {
		if f.z != nil {
			f.z.n = n0
		}
		rows, err := q.Query(ctx, f.sql(sorted), args...)
		if err != nil {
			return nil, err
		}
		events, ok, err := collectForwardSized(rows, f.z)
		if err != nil || ok {
			return events, err
		}
	}
	return nil, errors.New("pgstore: events of a chunk out of order")
}

// collectForward scans the rows of forward.sql and closes them. ok reports
// whether every chunk's events came in order from its first one to read.
func collectForward(rows pgx.Rows) (events []cairn.Event, ok bool, err error) {
	return collectForwardSized(rows, nil)
}

// collectForwardSized is collectForward that stops after the event that
// fills z, when z is set; closing the rows then discards the rest.
func collectForwardSized(rows pgx.Rows, z *sizer) (events []cairn.Event, ok bool, err error) {
	defer rows.Close()
	var lastChunk, lastN int64 = -1, 0
	for rows.Next() {
		var (
			e                cairn.Event
			pos              int64
			ctype            int16
			id               uuid.UUID
			chunk, n, firstN int64
		)
		if err := rows.Scan(&pos, &e.StreamID, &e.Version, &id, &e.Type, &ctype, &e.Data, &e.Metadata, &e.Tags, &e.Created,
			&chunk, &n, &firstN); err != nil {
			return nil, false, err
		}
		switch {
		case chunk == lastChunk && n == lastN+1:
		case chunk > lastChunk && n == firstN:
		default:
			rows.Close()
			return nil, false, rows.Err()
		}
		lastChunk, lastN = chunk, n
		e.ID = id
		e.Position = uint64(pos)
		e.ContentType = cairn.ContentType(ctype)
		e.Created = e.Created.UTC()
		events = append(events, e)
		if z.add(e) {
			break
		}
	}
	rows.Close()
	return events, true, rows.Err()
}

// collectEventsSized scans rows of events (position, stream, version, id,
// type, content type, data, metadata, tags, created) and closes them; it
// stops after the event that fills z, when z is set.
func collectEventsSized(rows pgx.Rows, z *sizer) ([]cairn.Event, error) {
	defer rows.Close()
	var out []cairn.Event
	for rows.Next() {
		var (
			e     cairn.Event
			pos   int64
			ctype int16
			id    uuid.UUID
		)
		if err := rows.Scan(&pos, &e.StreamID, &e.Version, &id, &e.Type, &ctype, &e.Data, &e.Metadata, &e.Tags, &e.Created); err != nil {
			return nil, err
		}
		e.ID = id
		e.Position = uint64(pos)
		e.ContentType = cairn.ContentType(ctype)
		e.Created = e.Created.UTC()
		out = append(out, e)
		if z.add(e) {
			break
		}
	}
	rows.Close()
	return out, rows.Err()
}

// sizer counts the data and metadata a sized read has scanned
// (cairn.SizedReader); a nil sizer never fills.
type sizer struct{ n, max int }

// add counts e and reports whether the read is full.
func (z *sizer) add(e cairn.Event) bool {
	if z == nil {
		return false
	}
	z.n += cairn.EventBytes(e)
	return z.n >= z.max
}

func (z *sizer) full() bool { return z.n >= z.max }

// firstWindow is how many events the first query of a sized read asks for.
// Closing a query's rows early makes PostgreSQL send the rest of them all
// the same (they are discarded), so a sized read asks for few events
// first, then for as many as the size of those leaves room for.
const firstWindow = 8

// sized reads at most count events holding maxBytes: read returns at most
// n events after last (nil for the first query), and stops scanning when z
// is full.
func sized(count, maxBytes int, read func(last *cairn.Event, n int, z *sizer) ([]cairn.Event, error)) ([]cairn.Event, error) {
	z := &sizer{max: maxBytes}
	n := count
	if maxBytes < math.MaxInt {
		n = min(count, firstWindow)
	}
	var out []cairn.Event
	for {
		var last *cairn.Event
		if len(out) > 0 {
			last = &out[len(out)-1]
		}
		page, err := read(last, n, z)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < n || len(out) >= count || z.full() {
			return out, nil
		}
		if len(page) == 0 {
			return out, nil
		}
		avg := max(1, z.n/len(out))
		n = min(count-len(out), (z.max-z.n)/avg+1)
	}
}

// ReadStream implements [cairn.Backend].
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadStreamSized(ctx, stream, from, count, math.MaxInt, dir)
}

// ReadStreamSized implements [cairn.SizedReader].
func (s *Store) ReadStreamSized(ctx context.Context, stream string, from int64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if dir == cairn.Backward && from == cairn.StreamEnd {
		from = math.MaxInt64
	}
	return sized(count, maxBytes, func(last *cairn.Event, n int, z *sizer) ([]cairn.Event, error) {
		if last == nil {
			return s.readStreamFirst(ctx, stream, from, n, dir, z)
		}
		next := last.Version + 1
		if dir == cairn.Backward {
			if last.Version == 0 {
				return nil, nil
			}
			next = last.Version - 1
		}
		events, err := s.readStreamPage(ctx, s.pool, stream, next, n, dir, z, false)
		return events, s.wrap("read stream", err)
	})
}

// readStreamPage reads at most n events of stream from version from: the
// durable ones, or all that q sees when all is set.
func (s *Store) readStreamPage(ctx context.Context, q querier, stream string, from int64, n int, dir cairn.Direction, z *sizer, all bool) ([]cairn.Event, error) {
	if dir == cairn.Forward {
		f := s.readStreamForward(all)
		f.z = z
		return f.read(ctx, q, stream, from, n)
	}
	rows, err := q.Query(ctx, s.readStreamBackwardSQL(all), stream, from, n)
	if err != nil {
		return nil, err
	}
	return collectEventsSized(rows, z)
}

// readStreamFirst is the first query of a stream read: when it finds no
// event, it says whether the stream is missing, deleted, or has none in the
// range.
func (s *Store) readStreamFirst(ctx context.Context, stream string, from int64, count int, dir cairn.Direction, z *sizer) ([]cairn.Event, error) {
	events, err := s.readStreamPage(ctx, s.pool, stream, from, count, dir, z, false)
	if err != nil || len(events) > 0 {
		return events, s.wrap("read stream", err)
	}
	// No events: say whether the stream is missing, deleted, or has none in
	// the range. The stream's state and its events must come from one
	// snapshot (a stream's row and its events commit together), and events
	// may have committed since the first query: read both in one
	// repeatable-read transaction. The state may come from an append that
	// is not durable yet: the read then takes every event the snapshot
	// holds, and makes them durable before it answers.
	pending := false
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if _, pending, err = s.streamStateOn(ctx, tx, "read", stream); err != nil {
			return err
		}
		events, err = s.readStreamPage(ctx, tx, stream, from, count, dir, z, true)
		return err
	})
	if pending {
		if _, serr := s.settle(ctx, s.pool); serr != nil {
			return nil, s.wrap("read stream", serr)
		}
	}
	if err != nil && !errors.Is(err, cairn.ErrStreamNotFound) && !errors.Is(err, cairn.ErrStreamDeleted) {
		err = s.wrap("read stream", err)
	}
	return events, err
}

// readStreamForward and readStreamBackwardSQL read a stream's events ($1
// the stream, $2 the version to start from, $3 how many) out of its
// chunks, in version order: the chunks scanned start at the one that holds
// the lowest version to read (the last one that begins at or before it);
// versions below the truncation point are skipped, and a deleted stream
// has nothing to read. Only durable chunks are read, unless all is set.
func (s *Store) readStreamForward(all bool) forward {
	lo := s.streamLow(true)
	return forward{
		chunks: s.streamChunks(lo, all) + ` ORDER BY version LIMIT $3`,
		key:    `version`,
		first:  `greatest(` + lo + ` - c.version + 1, 1)`,
		limit:  `$3`,
	}
}

func (s *Store) readStreamBackwardSQL(all bool) string {
	lo := s.streamLow(false)
	return s.expandSQL(s.streamChunks(lo, all)+` AND version <= $2::bigint ORDER BY version DESC LIMIT $3`,
		`c.version + x.n - 1 <= $2::bigint AND c.version + x.n - 1 >= `+lo, `c.version DESC, x.n DESC`, `$3`)
}

// streamLow is the lowest version of stream $1 to read (from version $2
// on when from is set), NULL when the stream is deleted.
func (s *Store) streamLow(from bool) string {
	if from {
		return `(SELECT greatest($2::bigint, s.before) FROM ` + s.streams + ` s WHERE s.id = $1 AND NOT s.deleted AND NOT s.tombstoned)`
	}
	return `(SELECT s.before FROM ` + s.streams + ` s WHERE s.id = $1 AND NOT s.deleted AND NOT s.tombstoned)`
}

// streamChunks selects the chunks of stream $1 that hold versions from lo
// on: the durable ones, or all when all is set.
func (s *Store) streamChunks(lo string, all bool) string {
	sql := `SELECT * FROM ` + s.chunks + ` WHERE stream = $1 AND version + count > ` + lo + `
		AND version >= (SELECT coalesce(max(c2.version), 0) FROM ` + s.chunks + ` c2 WHERE c2.stream = $1 AND c2.version <= ` + lo + `)`
	if !all {
		sql += ` AND position < ` + s.durableMark
	}
	return sql
}

// streamState returns the state of an existing stream, or the error for op
// on a stream that does not exist, was soft-deleted or tombstoned. When the
// state comes from an append that is not durable yet, it makes it durable
// before it answers.
func (s *Store) streamState(ctx context.Context, op, stream string) (streamState, error) {
	st, pending, err := s.streamStateOn(ctx, s.pool, op, stream)
	if pending {
		if _, serr := s.settle(ctx, s.pool); serr != nil {
			return st, s.wrap(op, serr)
		}
	}
	return st, err
}

// streamStateOn is streamState through q (the pool, or a transaction),
// which leaves it to the caller to settle when pending: when the stream's
// last append is not durable yet.
func (s *Store) streamStateOn(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, op, stream string) (st streamState, pending bool, err error) {
	err = q.QueryRow(ctx, `SELECT version, before, deleted, tombstoned, `+s.pendingSQL("t")+`
		FROM `+s.streams+` t WHERE id = $1`, stream).
		Scan(&st.version, &st.before, &st.deleted, &st.tombstoned, &pending)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return st, false, cairn.NotFound(op, stream)
	case err != nil:
		return st, false, s.wrap(op, err)
	case st.tombstoned:
		return st, pending, cairn.Deleted(op, stream)
	case st.current() < 0:
		return st, pending, cairn.NotFound(op, stream)
	}
	return st, pending, nil
}

// pendingSQL says whether the last append to the stream whose row is t is
// not durable yet: its last chunk ends beyond the durable mark. The
// stream's chunks are looked at only when the head is ahead of the mark.
func (s *Store) pendingSQL(t string) string {
	return `CASE WHEN (SELECT h.next FROM ` + s.head + ` h) > ` + s.durableMark + ` THEN
		coalesce((SELECT c.position + c.count FROM ` + s.chunks + ` c WHERE c.stream = ` + t + `.id
			ORDER BY c.version DESC LIMIT 1), 0) > ` + s.durableMark + ` ELSE false END`
}

// ReadAll implements [cairn.Backend]. Every position below the highest one a
// query sees is committed and visible (see the package documentation), so
// reading forward from the last position seen never skips an event.
func (s *Store) ReadAll(ctx context.Context, from uint64, count int, dir cairn.Direction) ([]cairn.Event, error) {
	return s.ReadAllSized(ctx, from, count, math.MaxInt, dir)
}

// ReadAllSized implements [cairn.SizedReader].
func (s *Store) ReadAllSized(ctx context.Context, from uint64, count, maxBytes int, dir cairn.Direction) ([]cairn.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	events, err := sized(count, maxBytes, func(last *cairn.Event, n int, z *sizer) ([]cairn.Event, error) {
		next, ok := cairn.NextFrom(from, last, func(e *cairn.Event) uint64 { return e.Position }, dir)
		if !ok {
			return nil, nil
		}
		return s.readAllPage(ctx, next, n, dir, z)
	})
	return events, s.wrap("read all", err)
}

// readAllPage reads at most count events of the log from position from.
func (s *Store) readAllPage(ctx context.Context, from uint64, count int, dir cairn.Direction, z *sizer) ([]cairn.Event, error) {
	if dir == cairn.Forward {
		if from > math.MaxInt64 {
			return nil, nil
		}
		return forward{
			chunks: `SELECT * FROM ` + s.chunks + ` WHERE position + count > $1::bigint
				AND position >= (SELECT coalesce(max(position), 0) FROM ` + s.chunks + ` WHERE position <= $1::bigint)
				AND position < ` + s.durableMark + `
				ORDER BY position LIMIT $2`,
			key:   `position`,
			first: `greatest($1::bigint - c.position + 1, 1)`,
			limit: `$2`,
			z:     z,
		}.read(ctx, s.pool, int64(from), count)
	}
	from = min(from, math.MaxInt64)
	rows, err := s.pool.Query(ctx, s.expandSQL(`SELECT * FROM `+s.chunks+` WHERE position <= $1::bigint AND position < `+s.durableMark+`
		ORDER BY position DESC LIMIT $2`,
		`c.position + x.n - 1 <= $1::bigint`, `c.position DESC, x.n DESC`, `$2`), int64(from), count)
	if err != nil {
		return nil, err
	}
	return collectEventsSized(rows, z)
}
