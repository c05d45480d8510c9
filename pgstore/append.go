package pgstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// maxAttempts bounds how often an append is tried when the connection fails
// or PostgreSQL aborts it for a deadlock or a concurrent duplicate.
const maxAttempts = 4

// streamState is a stream's row, locked by the transaction that read it.
type streamState struct {
	version    int64
	before     int64
	deleted    bool
	tombstoned bool
}

func (st streamState) current() int64 {
	if st.deleted || st.tombstoned {
		return -1
	}
	return st.version
}

// querier is anything that runs queries: a pgx.Tx, a *pgx.Conn or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// plan is the outcome of checking the requests of one transaction.
type plan struct {
	results []cairn.AppendResult
	errs    []error
	retry   []bool // the request repeats a recorded append: write nothing
	failed  bool   // some errs[i] != nil
	// condFailed is set when a condition failed, and the transaction
	// wrote nothing.
	condFailed bool
	created    time.Time

	// What to write, for the requests that are neither failed nor retries,
	// in request order.
	write   []int // indices of the requests to write
	total   int64 // events to write
	streams []string
	lasts   []int64 // new last version of each stream in streams
	runs    runRows
	rows    eventRows
	ix      indexRuns  // the index runs of the written events
	conds   conditions // the conditions of the written requests
}

// lockSQL creates missing stream rows and locks all of them, in the order
// given (sorted by the caller so that transactions cannot deadlock), and
// returns their state.
func (s *Store) lockSQL() string {
	return `INSERT INTO ` + s.streams + ` AS t (id) SELECT u FROM unnest($1::text[]) WITH ORDINALITY AS x(u, n) ORDER BY n
		ON CONFLICT (id) DO UPDATE SET id = t.id
		RETURNING id, version, before, deleted, tombstoned`
}

func (s *Store) lookupSQL() string {
	return `SELECT first_id, stream, version FROM ` + s.chunks + ` WHERE first_id = ANY($1::uuid[])`
}

func (s *Store) updateStreamsSQL() string {
	return `UPDATE ` + s.streams + ` AS t SET version = u.version, deleted = false
		FROM unnest($1::text[], $2::bigint[]) AS u(id, version) WHERE t.id = u.id`
}

// insertSQL is the last statement of an append: it takes the head row's lock,
// reserves the positions, inserts the chunks of events at them, writes the
// durable mark (see durable.go) and queues the notification. The lock is
// held until COMMIT, which is synchronous, WAL flush included: the mark and
// the events are durable once visible.
func (s *Store) insertSQL() string {
	return `WITH h AS (
		UPDATE ` + s.head + ` SET next = next + $1::bigint RETURNING next - $1::bigint AS first
	), r AS (
		SELECT * FROM unnest($2::text[], $3::bigint[], $4::int[], $5::int[], $6::uuid[]) AS r(stream, version, off, count, id)
	), c AS (
		SELECT c.n, (sum(c.n) OVER (ORDER BY c.o) - c.n)::int AS lo FROM unnest($7::int[]) WITH ORDINALITY AS c(n, o)
	), ins AS (
		INSERT INTO ` + s.chunks + ` (position, stream, version, count, first_id, ids, type, types, ctype, ctypes, data, metadata, tags, created, indexed)
		SELECT h.first + c.lo, r.stream, r.version + c.lo - r.off, c.n,
			CASE WHEN c.lo = r.off THEN r.id END,
			($8::uuid[])[c.lo + 1 : c.lo + c.n],
			CASE WHEN $11::int[] IS NULL THEN ($9::text[])[1] END,
			CASE WHEN $11::int[] IS NOT NULL THEN ARRAY(
				SELECT ($9::text[])[k.k] FROM unnest(($11::int[])[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
			CASE WHEN $11::int[] IS NULL THEN ($10::smallint[])[1] END,
			CASE WHEN $11::int[] IS NOT NULL THEN ARRAY(
				SELECT ($10::smallint[])[k.k] FROM unnest(($11::int[])[c.lo + 1 : c.lo + c.n]) WITH ORDINALITY AS k(k, o) ORDER BY k.o) END,
			($12::bytea[])[c.lo + 1 : c.lo + c.n],
			($13::bytea[])[c.lo + 1 : c.lo + c.n],
			($14::text[])[c.lo + 1 : c.lo + c.n],
			$15, true
		FROM h, c JOIN r ON c.lo >= r.off AND c.lo < r.off + r.count
	)
	SELECT first, pg_notify($16, (first + $1::bigint - 1)::text), ` + s.fn("durable_at") + `(first + $1::bigint) FROM h`
}

// insertArgs are insertSQL's arguments.
func (s *Store) insertArgs(p *plan) []any {
	return []any{p.total, p.runs.stream, p.runs.version, p.runs.off, p.runs.count, p.runs.id, p.rows.chunks,
		p.rows.id, p.rows.types, p.rows.ctypes, p.rows.kindArg(), p.rows.data, p.rows.metaArg(), p.rows.tagsArg(),
		p.created, s.channel}
}

// indexSQL files the written events in the index. It runs after insertSQL,
// under the head row's lock, whose row then holds the position after the
// write's events, in a statement that started after the lock was taken:
// it sees every entry committed before (see migration 6).
func (s *Store) indexSQL() string {
	return `INSERT INTO ` + s.indexRuns + ` (kind, value, number, position, count)
		SELECT x.k, x.v,
			coalesce((SELECT r.number + r.count FROM ` + s.indexRuns + ` r
				WHERE r.kind = x.k AND r.value = x.v ORDER BY r.number DESC LIMIT 1), 0) + x.n,
			(SELECT next FROM ` + s.head + `) - $1::bigint + x.o, x.c
		FROM unnest($2::smallint[], $3::text[], $4::bigint[], $5::bigint[], $6::int[]) AS x(k, v, n, o, c)`
}

func (p *plan) indexArgs() []any {
	var m runMerger
	m.add(&p.ix, 0)
	f := &m.out
	return []any{p.total, f.kind, f.value, f.nrel, f.off, f.count}
}

// checkSQL checks the conditions of the written requests, after insertSQL,
// under the head row's lock: it raises conditionFailedCode when any fails.
// Only the events before the write's own are looked at.
func (s *Store) checkSQL() string {
	return `SELECT ` + s.fn("check_conditions") + `((SELECT next FROM ` + s.head + `) - $1::bigint,
		$2::int[], $3::bigint[], $4::text[], $5::text[])`
}

func (p *plan) checkArgs() []any {
	c := &p.conds
	return []any{p.total, c.reqs, c.after, c.types, c.tags}
}

// fn is the schema-qualified name of one of the schema's functions.
func (s *Store) fn(name string) string {
	return pgx.Identifier{s.opts.Schema, name}.Sanitize()
}

// AppendBatch implements [cairn.BatchAppender]: all requests are one SQL
// transaction. A batch of one request with events is an append, and joins
// the next group of appends as [Store.Append] does; one check-only request
// is a transaction of its own, as batches of several are.
func (s *Store) AppendBatch(ctx context.Context, reqs []cairn.AppendRequest) ([]cairn.AppendResult, error) {
	if len(reqs) == 1 && len(reqs[0].Events) > 0 {
		p, err := s.submit(ctx, reqs[0])
		if err != nil {
			return nil, err
		}
		if p.err != nil {
			if p.whole {
				return nil, p.err
			}
			return nil, &cairn.BatchError{Errs: []error{p.err}}
		}
		return []cairn.AppendResult{p.res}, nil
	}
	results, errs, err := s.appendRetrying(ctx, reqs, true)
	if err != nil {
		return nil, err
	}
	for _, e := range errs {
		if e != nil {
			return nil, &cairn.BatchError{Errs: errs}
		}
	}
	return results, nil
}

// appendRetrying runs appendOnce until it succeeds, fails for good, or
// maxAttempts is reached. errs holds the requests' own failures; err a
// failure of the whole transaction, which wrote nothing. When atomic is set,
// nothing is written when any request fails; otherwise the other requests
// are.
func (s *Store) appendRetrying(ctx context.Context, reqs []cairn.AppendRequest, atomic bool) ([]cairn.AppendResult, []error, error) {
	var err error
	for attempt := 1; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return nil, nil, err
		}
		var p *plan
		p, err = s.appendOnce(ctx, reqs, atomic)
		if err == nil && p.condFailed && !atomic {
			return s.appendOthers(ctx, reqs, p)
		}
		if err == nil {
			return p.results, p.errs, nil
		}
		if isDuplicateID(err) {
			// Another transaction recorded one of the ids first. When
			// it was the first event of a repeat of this append, the
			// next attempt's lookup finds it; otherwise it is a
			// duplicate.
			if attempt > 1 {
				if len(reqs) == 1 {
					return nil, nil, &cairn.StreamError{Op: "append to", Stream: reqs[0].Stream, Err: cairn.ErrDuplicateEvent}
				}
				return nil, nil, fmt.Errorf("pgstore: append: an event id is already recorded: %w", cairn.ErrDuplicateEvent)
			}
		} else if attempt == maxAttempts || !retryable(err) || ctx.Err() != nil || s.closed.Load() {
			break
		}
		s.log.Warn("pgstore: append failed, trying again", "attempt", attempt, "err", err)
	}
	return nil, nil, s.wrap("append", err)
}

// appendOthers writes, each on its own terms, the requests that p would
// have written but for the conditions that failed, which wrote nothing.
func (s *Store) appendOthers(ctx context.Context, reqs []cairn.AppendRequest, p *plan) ([]cairn.AppendResult, []error, error) {
	var idx []int
	var others []cairn.AppendRequest
	for _, i := range p.write {
		if p.errs[i] == nil {
			idx = append(idx, i)
			others = append(others, reqs[i])
		}
	}
	if len(others) == 0 {
		return p.results, p.errs, nil
	}
	results, errs, err := s.appendRetrying(ctx, others, false)
	if err != nil {
		return nil, nil, err
	}
	for k, i := range idx {
		p.results[i], p.errs[i] = results[k], errs[k]
	}
	return p.results, p.errs, nil
}

// appendOnce is one attempt: one transaction in two pipelined round trips.
func (s *Store) appendOnce(ctx context.Context, reqs []cairn.AppendRequest, atomic bool) (*plan, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer pc.Release()
	conn := pc.Conn()
	committed := false
	defer func() {
		if !committed {
			rollback(conn)
		}
	}()

	p, err := s.lockAndCheck(ctx, conn, reqs, true)
	if err != nil {
		return nil, err
	}
	if atomic && p.failed && len(p.conds.reqs) > 0 {
		// The batch is refused: say which of its other requests' conditions
		// fail too, as of now. Nothing is written, so the head row's lock
		// is not needed.
		_, err := conn.Exec(ctx, s.checkSQL(), append([]any{0}, p.checkArgs()[1:]...)...)
		if failed, cerr := conditionErrors(err, p.errs); cerr != nil {
			return nil, cerr
		} else if !failed && err != nil {
			return nil, err
		}
	}
	if (atomic && p.failed) || p.total == 0 {
		// Nothing is written. The outcome may rest on appends that are
		// not durable yet: make them so before answering.
		rollback(conn)
		if _, err := s.settle(ctx, conn); err != nil {
			return nil, err
		}
		return p, nil
	}

	b := &pgx.Batch{}
	b.Queue(s.updateStreamsSQL(), p.streams, p.lasts)
	b.Queue(s.insertSQL(), s.insertArgs(p)...)
	checks := len(p.conds.reqs) > 0
	if checks {
		b.Queue(s.checkSQL(), p.checkArgs()...)
	}
	b.Queue(s.indexSQL(), p.indexArgs()...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	var first int64
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&first, nil, nil)
	}
	if err == nil && checks {
		_, err = br.Exec()
	}
	for i := 0; i < 2 && err == nil; i++ { // the index, the commit
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if failed, cerr := conditionErrors(err, p.errs); failed {
		// A condition failed: the transaction is aborted and writes
		// nothing; the deferred rollback ends it.
		p.failed, p.condFailed = true, true
		for _, i := range p.write {
			if p.errs[i] != nil {
				p.results[i] = cairn.AppendResult{}
			}
		}
		if cerr == nil {
			rollback(conn)
			_, cerr = s.settle(ctx, conn)
		}
		return p, cerr
	}
	if err != nil {
		return nil, err
	}
	committed = true
	p.place(reqs, first)
	return p, nil
}

// isDuplicateID reports whether err is the violation of the unique index on
// the first event ids of appends.
func isDuplicateID(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "chunks_first_id_key"
}

// place fills in the results of the written requests, whose events were
// inserted from position first on, in request order.
func (p *plan) place(reqs []cairn.AppendRequest, first int64) {
	pos := first
	for _, i := range p.write {
		pos += int64(len(reqs[i].Events))
		p.results[i].Position = uint64(pos - 1)
	}
}

// lockAndCheck runs the first round trip of an append inside conn (BEGIN,
// lock the streams, look up the first event ids) when begin is set, or
// inside the transaction conn already has otherwise, and checks every
// request.
func (s *Store) lockAndCheck(ctx context.Context, conn queryBatcher, reqs []cairn.AppendRequest, begin bool) (*plan, error) {
	ids := make([]string, 0, len(reqs))
	firsts := make([][16]byte, len(reqs))
	for i, r := range reqs {
		ids = append(ids, r.Stream)
		if len(r.Events) > 0 { // a check-only request looks up nothing
			firsts[i] = r.Events[0].ID
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	b := &pgx.Batch{}
	if begin {
		// Conditions and index numbers are read in statements that
		// start after the head row's lock is taken: each must see what
		// committed before it (see conditions).
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	}
	b.Queue(s.lockSQL(), ids)
	b.Queue(s.lookupSQL(), firsts)
	b.Queue("SELECT clock_timestamp()")
	br := conn.SendBatch(ctx, b)
	states := make(map[string]streamState, len(ids))
	type recorded struct {
		stream  string
		version int64
	}
	found := map[uuid.UUID]recorded{}
	var created time.Time
	err := func() error {
		if begin {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var st streamState
			if err := rows.Scan(&id, &st.version, &st.before, &st.deleted, &st.tombstoned); err != nil {
				rows.Close()
				return err
			}
			states[id] = st
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var id uuid.UUID
			var r recorded
			if err := rows.Scan(&id, &r.stream, &r.version); err != nil {
				rows.Close()
				return err
			}
			found[id] = r
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return br.QueryRow().Scan(&created)
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	p := &plan{
		results: make([]cairn.AppendResult, len(reqs)),
		errs:    make([]error, len(reqs)),
		retry:   make([]bool, len(reqs)),
		created: created.UTC(),
	}
	last := map[string]int{} // stream → index in p.streams
	for i, r := range reqs {
		st := states[r.Stream]
		if st.tombstoned {
			p.errs[i], p.failed = cairn.Deleted("append to", r.Stream), true
			continue
		}
		if len(r.Events) == 0 {
			// A check-only request of a batch: its stream's row is
			// locked like the others', and nothing is written for it.
			current := st.current()
			if j, ok := last[r.Stream]; ok {
				current = p.lasts[j]
			}
			p.results[i].Version = current
			p.retry[i] = true
			if err := r.Expected.Check(r.Stream, current); err != nil {
				p.errs[i], p.failed = err, true
			}
			continue
		}
		if rec, ok := found[r.Events[0].ID]; ok {
			events, err := s.readRecorded(ctx, conn, rec.stream, rec.version, len(r.Events))
			if err != nil {
				return nil, err
			}
			p.results[i], p.errs[i] = cairn.RetryResult(r.Stream, r.Expected, r.Events, events)
			p.retry[i] = true
			p.failed = p.failed || p.errs[i] != nil
			continue
		}
		current := st.current()
		if j, ok := last[r.Stream]; ok {
			current = p.lasts[j]
		}
		if err := r.Expected.Check(r.Stream, current); err != nil {
			p.errs[i], p.failed = err, true
			continue
		}
		next := max(st.version, current) + 1
		p.ix.addRequest(int32(i+1), int32(p.total), r.Stream, next, r.Events)
		if r.Condition != nil {
			p.conds.add(int32(i), r.Condition)
		}
		p.runs.stream = append(p.runs.stream, r.Stream)
		p.runs.version = append(p.runs.version, next)
		p.runs.off = append(p.runs.off, int32(p.total))
		p.runs.count = append(p.runs.count, int32(len(r.Events)))
		p.runs.id = append(p.runs.id, r.Events[0].ID)
		p.rows.addRequest(r.Stream, r.Events)
		newLast := next + int64(len(r.Events)) - 1
		if j, ok := last[r.Stream]; ok {
			p.lasts[j] = newLast
		} else {
			last[r.Stream] = len(p.streams)
			p.streams = append(p.streams, r.Stream)
			p.lasts = append(p.lasts, newLast)
		}
		p.results[i].Version = newLast
		p.write = append(p.write, i)
		p.total += int64(len(r.Events))
	}
	return p, nil
}

// queryBatcher is a *pgx.Conn or a pgx.Tx.
type queryBatcher interface {
	querier
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// readRecorded reads up to n events of stream from version from on: the
// events of a recorded append, whose first chunk starts at from.
func (s *Store) readRecorded(ctx context.Context, db querier, stream string, from int64, n int) ([]cairn.Event, error) {
	return forward{
		chunks: `SELECT * FROM ` + s.chunks + ` WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		key:    `version`,
		first:  `1`,
		limit:  `$3`,
	}.read(ctx, db, stream, from, n)
}

// rollback ends a failed transaction on conn. When that fails too, the
// connection is left in a state the pool discards on release.
func rollback(conn *pgx.Conn) {
	if conn.IsClosed() || conn.PgConn().TxStatus() == 'I' {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = conn.Exec(ctx, "ROLLBACK")
}
