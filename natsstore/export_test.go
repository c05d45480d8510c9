package natsstore

import (
	"context"
	"fmt"
	"time"

	"github.com/cairndb/cairn/diskstore"
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
func RecordKinds(ctx context.Context, d *DB) ([]string, error) {
	info, err := d.st.Info(ctx)
	if err != nil {
		return nil, err
	}
	var kinds []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := d.st.GetMsg(ctx, seq)
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
