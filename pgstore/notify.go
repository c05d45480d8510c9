package pgstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notify implements [cairn.Notifier]. It listens for the NOTIFY that every
// append sends once it is durable, on a connection of its own outside the
// pool (its application_name is "cairn:<schema>:listen"), and calls fn
// with the last durable position each notification carries, from any
// process. The connection is registered in the schema's listeners table
// while it listens: writers notify only when a listener is registered (see
// migration 9). When the connection fails it reconnects with a growing delay;
// after every (re)connect it calls fn with the current head (the durable
// mark), so a subscriber woken by it catches up on commits made while
// nobody was listening. Every Options.PollInterval without a notification
// it writes the durable mark if the head is ahead of it (a commit whose
// process ended before it wrote its mark) and calls fn if it moved, in
// case a notification was lost.
//
// fn runs on the listener's goroutine, one call at a time; it may be called
// more than once for one commit. stop ends the listener and waits for it;
// Close stops all listeners.
func (s *Store) Notify(fn func(head uint64)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		cancel()
		return func() {}
	}
	s.notifiers.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.notifiers.Done()
		defer close(done)
		s.listen(ctx, fn)
	}()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// listen runs until ctx ends, reconnecting as needed.
func (s *Store) listen(ctx context.Context, fn func(uint64)) {
	const minDelay, maxDelay = 50 * time.Millisecond, 5 * time.Second
	delay := minDelay
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, func() { delay = minDelay })
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("pgstore: notification listener lost its connection, reconnecting", "err", err, "delay", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, maxDelay)
	}
}

// listenOnce connects, LISTENs, reports the head, then waits for
// notifications until the connection fails or ctx ends. connected is called
// once the connection works.
func (s *Store) listenOnce(ctx context.Context, fn func(uint64), connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "cairn:" + s.opts.Schema + ":listen"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	registered := false
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		pid := conn.PgConn().PID()
		_ = conn.Close(cctx)
		if registered {
			// Through the pool, which Close closes after the listeners
			// stop: the listener's own connection may be broken. A row
			// left behind only costs writers a NOTIFY nobody hears,
			// until the next listener's registration removes it.
			if _, err := s.pool.Exec(cctx, `DELETE FROM `+s.listeners+` WHERE backend = $1`, int32(pid)); err != nil {
				s.log.Warn("pgstore: could not remove the listener's registration", "err", err)
			}
		}
	}()
	// Registered as a listener before LISTEN: every durable mark that
	// commits after the registration notifies, and the head read below
	// covers those before it (see migration 9).
	if s.version.Load() >= 9 {
		if _, err := conn.Exec(ctx, `SELECT `+s.fn("listen_register")+`()`); err != nil {
			return err
		}
		registered = true
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	// Listening: from here on no commit goes unheard. Report the head, which
	// covers whatever committed before.
	next, err := s.readHead(ctx, conn)
	if err != nil {
		return err
	}
	connected()
	if next > 0 {
		fn(uint64(next - 1))
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, s.opts.PollInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err == nil:
			if pos, ok := parseHead(n.Payload); ok {
				next = max(next, int64(pos)+1)
				fn(pos)
			}
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: poll the head in case a notification
			// went missing, writing the durable mark for the commits
			// that lack it (their process ended before it wrote it).
			h, err := s.settle(ctx, conn)
			if err != nil {
				return err
			}
			if h > next {
				next = h
				fn(uint64(h - 1))
			}
			continue
		default:
			return err
		}
	}
}

// readHead reads the durable mark: the position after the last event
// readers see.
func (s *Store) readHead(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var next int64
	err := conn.QueryRow(ctx, "SELECT "+s.durableMark).Scan(&next)
	return next, err
}

// parseHead reads the position a notification carries.
func parseHead(payload string) (uint64, bool) {
	n, err := strconv.ParseUint(payload, 10, 64)
	return n, err == nil
}
