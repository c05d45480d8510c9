package users

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/cairndb/cairn"
)

// watchInterval is the least time between two reads of the password
// notifications, so that a busy Store does not make the watcher read at
// every commit.
const watchInterval = 100 * time.Millisecond

// Watch follows the password notifications stream until ctx is done, and
// drops the cached credentials of each user it names, whose
// [DB.CredentialChanges] count moves on: so a password
// changed, a user disabled or deleted through another server sharing the
// Store is refused here too, as soon as the Store signals the change
// ([cairn.Store.Changes]; with an engine that does not signal other
// processes' commits, after at most [Options.CacheTTL]). Changes made
// through this DB need no watcher. It reads the notifications written
// after it starts, and drops the credentials cached before, which none of
// those cover; it returns nil when ctx is done.
func (db *DB) Watch(ctx context.Context) error {
	next, err := db.store.StreamVersion(ctx, PasswordNotificationsStream)
	if errors.Is(err, cairn.ErrStreamNotFound) {
		next, err = -1, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	next++
	// What was cached before now is covered by no notification read
	// here: verify it again.
	db.invalidateAll()
	const page = 256
	for {
		changed := db.store.Changes()
		events, err := db.store.ReadStream(ctx, PasswordNotificationsStream, next, page, cairn.Forward)
		if errors.Is(err, cairn.ErrStreamNotFound) {
			events, err = nil, nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			db.log.Warn("reading the password notifications", "err", err)
		}
		for _, e := range events {
			next = e.Version + 1
			var n passwordChanged
			if json.Unmarshal(e.Data, &n) != nil || n.LoginName == "" {
				continue
			}
			db.changed(n.LoginName)
		}
		if len(events) == page {
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
		select {
		case <-time.After(watchInterval):
		case <-ctx.Done():
			return nil
		}
	}
}
