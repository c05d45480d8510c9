package natsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/cairndb/cairn/diskstore"
	"github.com/nats-io/nats.go/jetstream"
)

// SetPurgeRuns sets how many appends one step of a compaction purges, for
// a test, and returns what puts it back.
func SetPurgeRuns(n int) (restore func()) {
	was := purgeRuns
	purgeRuns = n
	return func() { purgeRuns = was }
}

// RecordKinds returns what each record of d's log is, in order: "writes",
// "purge" (a step of a compaction's purge), "compact" (a whole
// compaction, as earlier builds logged it) or "sync" (a barrier).
//
// The log holds at least every record d applied. A new stream's servers
// may answer from a copy behind the leader's (one that was to lead
// answers for a while after the stream's creation), so a shorter answer
// is asked again.
func RecordKinds(ctx context.Context, d *DB) ([]string, error) {
	var first, last uint64
	err := retryStale(ctx, func() error {
		info, err := d.st.Info(ctx)
		if err != nil {
			return err
		}
		if applied := AppliedSeq(d); info.State.LastSeq < applied {
			return fmt.Errorf("the log ends at record %d, and the node applied %d", info.State.LastSeq, applied)
		}
		first, last = info.State.FirstSeq, info.State.LastSeq
		return nil
	})
	if err != nil {
		return nil, err
	}
	var kinds []string
	for seq := first; seq <= last; seq++ {
		var msg *jetstream.RawStreamMsg
		err := retryStale(ctx, func() (err error) {
			msg, err = d.st.GetMsg(ctx, seq)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		rec, err := decodeRecord(msg.Data)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		switch {
		case rec.compact:
			kinds = append(kinds, "compact")
		case len(rec.writes) == 0:
			kinds = append(kinds, "sync")
		default:
			if _, ok := rec.writes[0].(*diskstore.PurgeWrite); ok {
				kinds = append(kinds, "purge")
			} else {
				kinds = append(kinds, "writes")
			}
		}
	}
	return kinds, nil
}

// retryStale calls f until it succeeds, at most ten times, 50 ms apart.
func retryStale(ctx context.Context, f func() error) error {
	var err error
	for range 10 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

// RegisterEarlierNode writes an entry in d's registry as a node of a
// build before purge steps reports itself.
func RegisterEarlierNode(ctx context.Context, d *DB, id string) error {
	_, err := d.kv.Put(ctx, id, fmt.Appendf(nil, `{"id":%q,"applied":0,"reported":%q}`, id, time.Now().UTC().Format(time.RFC3339Nano)))
	return err
}

// SetReclaimFails makes the reclaims of the nodes opened from now on fail
// with err (nil: reclaim), for a test, and returns what puts it back.
func SetReclaimFails(err error) (restore func()) {
	was := reclaimFails
	reclaimFails = err
	return func() { reclaimFails = was }
}

// AppliedSeq returns the sequence of the last record of the log that d's
// copy applied: its readers see it. ([DB.Applied] is the durable mark,
// which may be behind.)
func AppliedSeq(d *DB) uint64 {
	d.appliedMu.Lock()
	defer d.appliedMu.Unlock()
	return d.applied
}
