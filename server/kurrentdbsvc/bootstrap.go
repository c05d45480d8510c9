package kurrentdbsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairndb/cairn"
)

// The system stream of KurrentDB's default access control lists, and the
// type of its events.
const (
	settingsStream = "$settings"
	settingsType   = "$settings"
)

// defaultSettings are KurrentDB's documented defaults of $settings: user
// streams open to every user, system streams to $admins.
const defaultSettings = `{"$userStreamAcl":{"$r":"$all","$w":"$all","$d":"$all","$mr":"$all","$mw":"$all"},` +
	`"$systemStreamAcl":{"$r":"$admins","$w":"$admins","$d":"$admins","$mr":"$admins","$mw":"$admins"}}`

// Bootstrap writes, into a store that holds no event yet, the system
// events a new KurrentDB node starts with that these services own: the
// default ACLs in $settings. A store that holds events is left as it is,
// and a second server bootstrapping the same new store at once writes
// nothing twice ($settings is written expecting no stream).
func Bootstrap(ctx context.Context, store *cairn.Store) error {
	has, err := store.HasEvents(ctx)
	if err != nil || has {
		return err
	}
	_, err = store.System().Append(ctx, settingsStream, cairn.NoStream,
		cairn.EventData{Type: settingsType, ContentType: cairn.ContentJSON, Data: []byte(defaultSettings)})
	if err != nil && !errors.Is(err, cairn.ErrWrongExpectedVersion) {
		return fmt.Errorf("write the default settings of a new store: %w", err)
	}
	return nil
}
