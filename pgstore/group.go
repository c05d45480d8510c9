package pgstore

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/cairndb/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group commit.
//
// The head row's lock makes the end of every append (its last statement and
// the COMMIT with its WAL flush) happen one at a time in the whole
// database. To keep that from bounding a process to one append per WAL
// flush, the appends that arrive while a transaction is in flight are
// queued and committed together in the next one: one transaction, one head
// increment, one flush for the group. Each append in a group keeps its own
// outcome: one that fails its expected version, repeats an earlier append
// or hits a tombstone gets its error or earlier result, and the others are
// written. At most maxGroups group transactions of a process are in flight
// at once, so that one group can lock its streams while the previous one
// commits.

// maxGroups is how many group transactions a Store runs at once.
const maxGroups = 2

// maxGroupEvents bounds the events of one group transaction.
const maxGroupEvents = 4096

type pending struct {
	req  cairn.AppendRequest
	res  cairn.AppendResult
	err  error
	done chan struct{}
}

type committer struct {
	mu      sync.Mutex
	queue   []*pending
	running int // group loops running
	last    int // size of the last group taken
}

// Append implements [cairn.Backend]. The append joins the next group
// transaction of this Store (see the package documentation). When ctx ends
// before the append's group has started, it is dropped and the context's
// error returned; once its group has started, Append waits for the outcome.
func (s *Store) Append(ctx context.Context, stream string, expected cairn.ExpectedVersion, events []cairn.EventData) (cairn.AppendResult, error) {
	if err := s.check(ctx); err != nil {
		return cairn.AppendResult{}, err
	}
	p := &pending{
		req:  cairn.AppendRequest{Stream: stream, Expected: expected, Events: events},
		done: make(chan struct{}),
	}
	c := &s.commit
	c.mu.Lock()
	c.queue = append(c.queue, p)
	start := c.running < maxGroups
	if start {
		c.running++
	}
	c.mu.Unlock()
	if start {
		go s.commitLoop()
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	for i, q := range c.queue {
		if q == p {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			c.mu.Unlock()
			return cairn.AppendResult{}, ctx.Err()
		}
	}
	c.mu.Unlock()
	<-p.done
	return p.res, p.err
}

// commitLoop commits groups until the queue is empty.
func (s *Store) commitLoop() {
	c := &s.commit
	for {
		// Appends whose group just committed are about to queue their
		// next append: let them, so that the next group is not one
		// append that happened to come first.
		for range 3 {
			c.mu.Lock()
			short := len(c.queue) < c.last
			c.mu.Unlock()
			if !short {
				break
			}
			runtime.Gosched()
		}
		c.mu.Lock()
		group := c.take()
		c.last = len(group)
		if len(group) == 0 {
			c.running--
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		s.commitGroup(group)
	}
}

// take removes the next group from the queue, in arrival order. An append
// sharing an event id with one already in the group waits for the next
// group, so that its retry detection sees the other one's events.
func (c *committer) take() []*pending {
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
		group = append(group, p)
		n += len(p.req.Events)
	}
	c.queue = rest
	return group
}

// commitGroup commits one group and hands every append its outcome.
func (s *Store) commitGroup(group []*pending) {
	ctx := context.Background()
	reqs := make([]cairn.AppendRequest, len(group))
	for i, p := range group {
		reqs[i] = p.req
	}
	results, errs, err := s.appendRetrying(ctx, reqs, false)
	var pgErr *pgconn.PgError
	if err != nil && len(group) > 1 && (errors.As(err, &pgErr) || errors.Is(err, cairn.ErrDuplicateEvent)) {
		// The transaction failed for a reason that belongs to one of
		// the appends: run each alone, so that each gets its own outcome.
		for _, p := range group {
			results, errs, err := s.appendRetrying(ctx, []cairn.AppendRequest{p.req}, true)
			if err != nil {
				p.err = err
			} else {
				p.res, p.err = results[0], errs[0]
			}
			close(p.done)
		}
		return
	}
	for i, p := range group {
		if err != nil {
			p.err = err
		} else {
			p.res, p.err = results[i], errs[i]
		}
		close(p.done)
	}
}
