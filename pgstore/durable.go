package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// The durable mark.
//
// A group of appends commits asynchronously: its transaction takes the
// head row's lock, which orders positions, last, and releases it as soon
// as its commit is visible, without waiting for the WAL flush, so that the
// commits of many processes overlap instead of flushing one after the
// other (see migration 7). Its events are then visible before they are
// durable, and readers must not see them yet: a crash of the server would
// lose them and hand their positions out again. So the engine makes them
// durable in a second transaction, the schema's mark_durable, which writes
// the head it finds in a row of its connection's own in the durable table
// and commits synchronously: its WAL flush covers every commit that came
// before it, so every position below the head it wrote is durable once it
// is visible. Readers read only below the durable mark, the largest of
// those rows (Store.durableMark), in the same statement, hence snapshot,
// as the events: positions below it are committed and visible in that
// snapshot, and durable. An append returns after its mark commits.
//
// What a reader learns from rows other than the events (a stream's version
// or existence, the list of streams) may come from an append that is not
// durable yet. Such reads check it in the same statement and, when it is
// so, write the mark themselves (settle) before they answer.
//
// Outcomes of appends that wrote nothing (a wrong expected version, a
// failed condition, a retry recognised) may rest on events not yet
// durable too; the mark is written after them as well, by the pipeline of
// a group, and by settle after the other writes.

// queueDurable queues, after a write that committed asynchronously, the
// transaction that makes it durable and, when the last mark found
// listeners, the one that notifies them; otherwise the mark notifies them
// itself if some registered since (see migration 9). It returns how many
// statements it queued, the mark's being the second.
func (s *Store) queueDurable(b *pgx.Batch) int {
	b.Queue("BEGIN")
	if s.version.Load() < 9 {
		b.Queue(`SELECT ` + s.fn("mark_durable") + `(), true`)
		b.Queue("COMMIT")
		b.Queue(`SELECT `+s.fn("notify_durable")+`($1)`, s.channel)
		return 4
	}
	if s.listened.Load() {
		b.Queue(`SELECT mark, listened FROM ` + s.fn("mark_durable_listened") + `(NULL)`)
		b.Queue("COMMIT")
		b.Queue(`SELECT `+s.fn("notify_durable")+`($1)`, s.channel)
		return 4
	}
	b.Queue(`SELECT mark, listened FROM `+s.fn("mark_durable_listened")+`($1)`, s.channel)
	b.Queue("COMMIT")
	return 3
}

// readDurable reads the results of what queueDurable queued (n
// statements), and records whether the mark found listeners.
func (s *Store) readDurable(br pgx.BatchResults, n int) error {
	if _, err := br.Exec(); err != nil {
		return err
	}
	var mark int64
	var listened bool
	if err := br.QueryRow().Scan(&mark, &listened); err != nil {
		return err
	}
	for range n - 2 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	s.listened.Store(listened)
	return nil
}

// settle writes the durable mark when the head is ahead of it, through q
// (outside a transaction): every position committed before settle is
// durable and visible to readers when it returns. It returns the mark.
func (s *Store) settle(ctx context.Context, q querier) (int64, error) {
	rows, err := q.Query(ctx, `SELECT `+s.fn("mark_durable")+`()`)
	if err != nil {
		return 0, err
	}
	mark, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	return mark, nil
}
