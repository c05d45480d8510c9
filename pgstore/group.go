package pgstore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit.
//
// The head row's lock makes the end of every append (its last statements and
// its COMMIT) happen one at a time in the whole database, and each append
// costs a WAL flush (its durable mark's, see durable.go). To keep that from
// bounding a process to one append per round trip and flush, the appends
// that arrive while a transaction is in flight are queued and committed
// together in the next one: one transaction, one head increment, one flush
// for the group. Each append in a group keeps its own
// outcome: one that fails its expected version, repeats an earlier append
// or hits a tombstone gets its error or earlier result, and the others are
// written. One group transaction of a process is in flight at a time
// (maxGroups): the end of every transaction is serial anyway, and with
// more than one in flight the groups come out smaller (measured: 0.75–0.85×
// plain INSERT at 16 writers with two in flight, 0.96–1.04× with one).

// maxGroups is how many group transactions a Store runs at once.
const maxGroups = 1

// maxGroupEvents bounds the events of one group transaction.
const maxGroupEvents = 4096

type pending struct {
	req  cairn.AppendRequest
	runs indexRuns        // the index runs of its events, relative to them
	keys []cairn.IndexKey // the keys of its events
	res  cairn.AppendResult
	err  error
	// whole is set when err is the failure of the whole group's
	// transaction rather than the append's own outcome.
	whole bool
	// clash is set by takeLocked when the append's condition may match the
	// events of an append before it in its group.
	clash bool
	done  chan struct{}
}

// committer queues the appends waiting for a group transaction. Locks: mu
// guards the fields below it; it is a leaf (nothing else is locked while it
// is held), and methods named …Locked expect it held.
type committer struct {
	mu      sync.Mutex
	queue   []*pending
	running int // group loops running
	last    int // size of the last group taken

	// Owned by the group loop, of which one runs at a time (maxGroups),
	// started and ended under mu, in an appending goroutine (lead) or a
	// goroutine of its own (commitLoop).
	lastEnd int64 // the position after the last group written, or -1
	alone   int   // groups written in a row with no other write between
	// The context the group's attempts run under (attemptContext), when
	// it ends, and its cancel.
	attempt     context.Context
	attemptEnd  time.Time
	stopAttempt context.CancelFunc
}

// attemptContext is the context an attempt of a group runs under: it ends
// at least timeout after now, and at most twice that. Attempts share one
// until less than timeout of it is left, so that an attempt does not start
// a timer of its own: a timer due before every other one wakes the
// runtime's network poller when it is added, which cost a lone writer
// about 10 µs of CPU per append, a tenth of its share. The last one ends by
// itself.
func (c *committer) attemptContext(timeout time.Duration) context.Context {
	now := time.Now()
	if c.attempt == nil || c.attemptEnd.Sub(now) < timeout {
		if c.stopAttempt != nil {
			c.stopAttempt() // no attempt runs under it now
		}
		c.attemptEnd = now.Add(2 * timeout)
		c.attempt, c.stopAttempt = context.WithDeadline(context.Background(), c.attemptEnd)
	}
	return c.attempt
}

// aloneGroups is how many groups a Store must write in a row, with no
// other write in the database between them, before it commits its groups
// synchronously in one transaction (see groupMode).
const aloneGroups = 2

// groupMode says how the next group commits: synchronously, writing its
// durable mark and its notification in its own transaction, when this
// Store has been writing alone (one transaction instead of three), or
// asynchronously, followed by
// the durable mark in a transaction of its own, so that the commits of
// processes writing side by side overlap (see durable.go). A process that
// writes alone holds the head row's lock through its WAL flush; the first
// write of another process in between makes it commit asynchronously
// again.
func (c *committer) groupMode() (inSync bool) {
	return c.alone >= aloneGroups
}

// written records the positions a group wrote: first … end-1.
func (c *committer) written(first, end int64) {
	if first == c.lastEnd {
		c.alone++
	} else {
		c.alone = 0
	}
	c.lastEnd = end
}

// Append implements [cairn.Backend]. The append joins the next group
// transaction of this Store (see the package documentation). When ctx ends
// before the append's group has started, it is dropped and the context's
// error returned; once its group has started, Append waits for the outcome.
func (s *Store) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	p, err := s.submit(ctx, cairn.AppendRequest{Stream: stream, Expected: expected, Events: events})
	if err != nil {
		return cairn.AppendResult{}, err
	}
	return p.res, p.err
}

// submit queues req for the next group transaction and waits for its
// outcome, in the returned pending. The error is ctx's when the append was
// dropped before its group started.
func (s *Store) submit(ctx context.Context, req cairn.AppendRequest) (*pending, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	p := &pending{req: req, done: make(chan struct{})}
	// The index keys are computed here, by the appending goroutine, not by
	// the one that commits the group.
	p.keys = p.runs.addRequest(0, 0, req.Stream, -1, req.Events)
	c := &s.commit
	c.mu.Lock()
	c.queue = append(c.queue, p)
	start := c.running < maxGroups
	if start {
		c.running++
	}
	c.mu.Unlock()
	if start {
		s.lead(p)
	}
	select {
	case <-p.done:
		return p, nil
	case <-ctx.Done():
	}
	c.mu.Lock()
	for i, q := range c.queue {
		if q == p {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			c.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	c.mu.Unlock()
	<-p.done
	return p, nil
}

// lead runs the group loop in the goroutine of p's append, which found
// none running, until p's group has committed; then it leaves the loop, if
// appends are waiting, to a goroutine of its own. A lone writer commits its
// appends in its own goroutine: no goroutine is started, none grows its
// stack anew, for each append.
func (s *Store) lead(p *pending) {
	c := &s.commit
	for {
		group := s.nextGroup()
		if group == nil {
			return
		}
		s.commitGroup(group)
		select {
		case <-p.done:
		default:
			continue
		}
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		go s.commitLoop()
		return
	}
}

// commitLoop commits groups until the queue is empty.
func (s *Store) commitLoop() {
	for {
		group := s.nextGroup()
		if group == nil {
			return
		}
		s.commitGroup(group)
	}
}

// nextGroup takes the next group from the queue. When the queue is empty
// it ends the loop (running) and returns nil.
func (s *Store) nextGroup() []*pending {
	c := &s.commit
	// Appends whose group just committed are about to queue their next
	// append: let them, so that the next group is not one append that
	// happened to come first. The next group is expected to hold them and
	// the appends queued meanwhile: waiting only for as many as the last
	// group held would keep writers split in cohorts that alternate (16
	// writers as groups of 8, measured at 13–15k events/s against 20–23k
	// as groups of 16). A lone writer has nobody to wait for.
	c.mu.Lock()
	want := c.last + len(c.queue)
	c.mu.Unlock()
	for range 3 {
		c.mu.Lock()
		short := c.last > 1 && len(c.queue) < want
		c.mu.Unlock()
		if !short {
			break
		}
		runtime.Gosched()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	group := c.takeLocked()
	c.last = len(group)
	if len(group) == 0 {
		c.running--
		return nil
	}
	return group
}

// takeLocked removes the next group from the queue, in arrival order. An
// append sharing an event id with one already in the group waits for the
// next group, so that its retry detection sees the other one's events. A
// conditional append whose query may match the events of one already in
// the group is marked clash, so that append_group checks its condition
// against them too (see conditions). c.mu is held.
func (c *committer) takeLocked() []*pending {
	var group, rest []*pending
	var ids map[uuid.UUID]bool
	n := 0
	for i, p := range c.queue {
		if n > 0 && n+len(p.req.Events) > maxGroupEvents {
			rest = append(rest, c.queue[i:]...)
			break
		}
		clash := false
		for _, e := range p.req.Events {
			if ids[e.ID] {
				clash = true
				break
			}
		}
		if clash {
			rest = append(rest, p)
			continue
		}
		if len(c.queue) > 1 {
			if ids == nil {
				ids = map[uuid.UUID]bool{}
			}
			for _, e := range p.req.Events {
				ids[e.ID] = true
			}
		}
		p.clash = false
		if cond := p.req.Condition; cond != nil {
			for _, q := range group {
				if mayMatch(cond.FailIfEventsMatch, q.keys) {
					p.clash = true
					break
				}
			}
		}
		group = append(group, p)
		n += len(p.req.Events)
	}
	c.queue = rest
	return group
}

// commitGroup commits one group and hands every append its outcome.
func (s *Store) commitGroup(group []*pending) {
	ctx := context.Background()
	results, errs, err := s.appendGroup(group)
	var pgErr *pgconn.PgError
	if err != nil && len(group) > 1 && (errors.As(err, &pgErr) || errors.Is(err, cairn.ErrDuplicateEvent)) {
		// The transaction failed for a reason that belongs to one of
		// the appends: run each alone, so that each gets its own outcome.
		for _, p := range group {
			results, errs, err := s.appendRetrying(ctx, []cairn.AppendRequest{p.req}, true)
			if err != nil {
				p.err, p.whole = err, true
			} else {
				p.res, p.err = results[0], errs[0]
			}
			close(p.done)
		}
		return
	}
	for i, p := range group {
		if err != nil {
			p.err, p.whole = err, true
		} else {
			p.res, p.err = results[i], errs[i]
		}
		close(p.done)
	}
}

// groupArgs are append_group's arguments.
type groupArgs struct {
	streams  []string
	expected []int64
	counts   []int32
	rows     eventRows
	ix       indexRuns // the runs of each request, relative to it
	// fx are the runs merged and numbered for the group, for the case
	// where every request is written to a stream that exists.
	fx runMerger
	// The conditions, nil when no request has one.
	q     conditions
	clash []bool
}

func (a *groupArgs) list() []any {
	r, ix, fx := &a.rows, &a.ix, &a.fx.out
	return []any{a.streams, a.expected, a.counts, r.id, r.types, r.ctypes, r.kindArg(), r.data, r.metaArg(), r.tagsArg(), r.chunks,
		ix.req, ix.kind, ix.value, ix.off, ix.count, ix.first,
		fx.kind, fx.value, fx.nrel, fx.off, fx.count,
		a.q.reqs, a.q.after, a.q.types, a.q.tags, a.clash}
}

// appendGroup appends the group's requests, each on its own terms, with
// one call of the schema's append_group function, or of append_one for a
// lone append without a condition: one round trip, in which the call
// commits asynchronously and the durable mark follows (see durable.go). It
// tries again when the connection fails. A group runs on its own, whatever
// its appends' contexts, each attempt bounded by Options.GroupTimeout
// (attemptContext).
func (s *Store) appendGroup(group []*pending) ([]cairn.AppendResult, []error, error) {
	ctx := context.Background()
	reqs := make([]cairn.AppendRequest, len(group))
	for i, p := range group {
		reqs[i] = p.req
	}
	var sql string
	var args []any
	conds := false
	inSync := s.commit.groupMode()
	var channel *string
	if inSync {
		channel = &s.channel
	}
	if len(group) == 1 && group[0].req.Condition == nil {
		sql, args = s.oneCall(group[0], channel)
	} else {
		sql, args, conds = s.groupCall(group, channel)
	}
	var err error
	for attempt := 1; ; attempt++ {
		if err := s.check(ctx); err != nil {
			return nil, nil, err
		}
		var out []groupRow
		actx := s.commit.attemptContext(s.opts.GroupTimeout)
		start := time.Now()
		out, err = s.callGroup(actx, sql, args, inSync)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		if err == nil {
			s.stats.add(len(group), time.Since(start))
			s.groupWritten(group, out)
			return s.groupOutcome(ctx, reqs, out)
		}
		if isDuplicateID(err) {
			// A concurrent append to another stream recorded one of
			// the first ids; the step-by-step transaction sorts out
			// which append is a retry and which a duplicate.
			if conds && len(reqs) > 1 {
				// One transaction checks conditions against the
				// events committed before it only: commitGroup
				// appends each alone, in order.
				return nil, nil, err
			}
			return s.appendRetrying(ctx, reqs, false)
		}
		if attempt == maxAttempts || !(retryable(err) || timedOut) || ctx.Err() != nil || s.closed.Load() {
			break
		}
		s.log.Warn("pgstore: append failed, trying again", "attempt", attempt, "err", err)
	}
	return nil, nil, s.wrap("append", err)
}

// groupWritten tells the committer which positions the group's call
// wrote (out holds its outcomes): those of its appends written (status 0).
func (s *Store) groupWritten(group []*pending, out []groupRow) {
	first, end := int64(-1), int64(-1)
	for i, g := range out {
		if g.status != 0 || i >= len(group) || g.position == nil {
			continue
		}
		last := *g.position
		if f := last - int64(len(group[i].req.Events)) + 1; first < 0 || f < first {
			first = f
		}
		end = max(end, last+1)
	}
	if first >= 0 {
		s.commit.written(first, end)
	}
}

// oneCall is the call of append_one for p, which writes the durable mark
// and notifies channel itself unless channel is nil.
func (s *Store) oneCall(p *pending, channel *string) (string, []any) {
	r := p.req
	var rows eventRows
	rows.addRequest(r.Stream, r.Events)
	var m runMerger
	m.add(&p.runs, 0)
	// The keys of a stream's first event come last.
	fx := &m.out
	var fresh int32
	for i, first := range p.runs.first {
		if first {
			fx.kind = append(fx.kind, p.runs.kind[i])
			fx.value = append(fx.value, p.runs.value[i])
			fx.nrel = append(fx.nrel, 0)
			fx.off = append(fx.off, 0)
			fx.count = append(fx.count, 1)
			fresh++
		}
	}
	sql := `SELECT status, out_version, out_position, rec_stream, rec_version FROM ` + s.fn("append_one") +
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
	return sql, []any{r.Stream, r.Expected.Int64(), rows.id, rows.types, rows.ctypes, rows.kindArg(), rows.data, rows.metaArg(), rows.tagsArg(), rows.chunks,
		fx.kind, fx.value, fx.nrel, fx.off, fx.count, fresh, channel}
}

// groupCall is the call of append_group for group, which writes the
// durable mark and notifies channel itself unless channel is nil; conds
// reports whether any append has a condition.
func (s *Store) groupCall(group []*pending, channel *string) (sql string, args []any, conds bool) {
	a := groupArgs{
		streams:  make([]string, len(group)),
		expected: make([]int64, len(group)),
		counts:   make([]int32, len(group)),
	}
	var base int64
	for i, p := range group {
		r := p.req
		a.streams[i], a.expected[i], a.counts[i] = r.Stream, r.Expected.Int64(), int32(len(r.Events))
		a.rows.addRequest(r.Stream, r.Events)
		for range p.runs.kind {
			a.ix.req = append(a.ix.req, int32(i+1))
		}
		a.ix.kind = append(a.ix.kind, p.runs.kind...)
		a.ix.value = append(a.ix.value, p.runs.value...)
		a.ix.off = append(a.ix.off, p.runs.off...)
		a.ix.count = append(a.ix.count, p.runs.count...)
		a.ix.first = append(a.ix.first, p.runs.first...)
		a.fx.add(&p.runs, base)
		base += int64(len(r.Events))
		conds = conds || r.Condition != nil
	}
	if conds {
		a.clash = make([]bool, len(group))
		for i, p := range group {
			if p.req.Condition != nil {
				a.q.add(int32(i+1), p.req.Condition)
				a.clash[i] = p.clash
			}
		}
	}
	sql = `SELECT status, out_version, out_position, rec_stream, rec_version FROM ` + s.fn("append_group") +
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`
	return sql, append(a.list(), channel), conds
}

type groupRow struct {
	status     int32
	version    *int64
	position   *int64
	recStream  *string
	recVersion *int64
}

// callGroup runs the call sql of append_group or append_one in a
// transaction of its own, and returns the call's rows. When inSync is set
// the call writes the durable mark itself and the transaction, implicit
// when it can be, commits synchronously; otherwise the call commits
// asynchronously, and the durable mark and the notification follow in the
// same round trip. Either way, an
// outcome other than a write, which may rest on appends not durable yet,
// is returned once the mark covers them.
func (s *Store) callGroup(ctx context.Context, sql string, args []any, inSync bool) ([]groupRow, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer pc.Release()
	conn := pc.Conn()
	b := &pgx.Batch{}
	// Index numbers and conditions are read in statements that start
	// after the head row's lock is taken: each must see what committed
	// before it, so the call runs at READ COMMITTED. A synchronous call is
	// the batch's only statement: it runs in the implicit transaction
	// that the end of the batch (its Sync message) commits, when that is
	// READ COMMITTED already (readCommitted); otherwise, and before the
	// durable mark's transaction, it needs a transaction of its own.
	explicit := !inSync || !s.readCommitted
	if explicit {
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	}
	b.Queue(sql, args...)
	if explicit {
		b.Queue("COMMIT")
	}
	durable := 0
	if !inSync {
		durable = s.queueDurable(b)
	}
	br := conn.SendBatch(ctx, b)
	var out []groupRow
	err = func() error {
		if explicit {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var g groupRow
			if err := rows.Scan(&g.status, &g.version, &g.position, &g.recStream, &g.recVersion); err != nil {
				rows.Close()
				return err
			}
			out = append(out, g)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if explicit {
			if _, err := br.Exec(); err != nil { // the commit
				return err
			}
		}
		if durable > 0 {
			return s.readDurable(br, durable)
		}
		return nil
	}()
	// Close reads the batch to its end: an implicit transaction has
	// committed, or failed, once it returns.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rollback(conn)
		return nil, err
	}
	return out, nil
}

// groupOutcome turns append_group's rows into results and errors. Requests
// that repeat a recorded append are resolved here, after the commit, from
// the recorded events.
func (s *Store) groupOutcome(ctx context.Context, reqs []cairn.AppendRequest, out []groupRow) ([]cairn.AppendResult, []error, error) {
	if len(out) != len(reqs) {
		return nil, nil, fmt.Errorf("pgstore: append: %d outcomes for %d requests", len(out), len(reqs))
	}
	results := make([]cairn.AppendResult, len(reqs))
	errs := make([]error, len(reqs))
	for i, g := range out {
		r := reqs[i]
		switch g.status {
		case 0:
			results[i] = cairn.AppendResult{Version: *g.version, Position: uint64(*g.position)}
		case 1:
			errs[i] = r.Expected.Check(r.Stream, *g.version)
			if errs[i] == nil {
				// The schema's expected_ok and cairn disagree: never
				// report a refused append as written.
				return nil, nil, fmt.Errorf("pgstore: append to %q: the schema refused expected version %v at version %d, which cairn accepts", r.Stream, r.Expected, *g.version)
			}
		case 2:
			errs[i] = cairn.Deleted("append to", r.Stream)
		case 3:
			recorded, err := s.readRecorded(ctx, s.pool, *g.recStream, *g.recVersion, len(r.Events))
			if err != nil {
				return nil, nil, s.wrap("append", err)
			}
			results[i], errs[i] = cairn.RetryResult(r.Stream, r.Expected, r.Events, recorded)
		case 4:
			errs[i] = &cairn.ConditionError{Position: uint64(*g.position)}
		default:
			return nil, nil, fmt.Errorf("pgstore: append: unknown outcome %d", g.status)
		}
	}
	return results, errs, nil
}

// commitCounters are the counts CommitStats reports. Each group call that
// succeeds is a group and a sync: its own synchronous commit, or the
// durable mark's in the same round trip.
type commitCounters struct {
	writes, groups atomic.Uint64
	callTime       atomic.Int64 // nanoseconds
}

func (c *commitCounters) add(writes int, took time.Duration) {
	c.writes.Add(uint64(writes))
	c.groups.Add(1)
	c.callTime.Add(int64(took))
}

// CommitStats implements [cairn.GroupCommitter]: the group calls that
// succeeded since the Store was opened and the appends they held. Each
// call makes its group durable with a synchronous commit, its own or the
// durable mark's in the same round trip (see Durability in the package
// documentation), so Syncs equals Groups, and SyncTime is the calls'
// round trips, the writing included. Batches of several requests and
// commits with projections, transactions of their own, are not counted.
func (s *Store) CommitStats() cairn.CommitStats {
	g := s.stats.groups.Load()
	return cairn.CommitStats{
		Writes:   s.stats.writes.Load(),
		Groups:   g,
		Syncs:    g,
		SyncTime: time.Duration(s.stats.callTime.Load()),
	}
}
