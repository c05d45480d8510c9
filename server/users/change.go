package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/cairndb/cairn"
	"github.com/cairndb/cairn/server/auth"
)

// userStreamACL is the metadata KurrentDB gives a user's stream: only
// administrators may write, delete, or change its metadata; reading falls
// to the default of system streams (administrators).
var userStreamACL = []byte(`{"$acl":{"$w":"$admins","$d":"$admins","$mw":"$admins"}}`)

// notificationsMeta keeps password notifications an hour, as KurrentDB
// does.
var notificationsMeta = []byte(`{"$maxAge":3600}`)

// maxRetries bounds the attempts of a change that loses races with other
// changes of the same user.
const maxRetries = 8

// Builtin are the passwords of the built-in users, which [DB.Bootstrap]
// creates when the store has never held them.
type Builtin struct {
	// AdminPassword is the password of admin, in $admins.
	AdminPassword string
	// OpsPassword is the password of ops, in $ops.
	OpsPassword string
}

// Bootstrap creates the built-in users admin (in $admins) and ops (in
// $ops), as KurrentDB does on its first start: each only if the store has
// never held it, so that a password changed since, or a user deleted,
// stays so. Their creation, and the metadata of the password
// notifications stream, commit together.
func (db *DB) Bootstrap(ctx context.Context, b Builtin) error {
	logins, err := db.everCreated(ctx)
	if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	builtin := []struct {
		login, fullName, group, password string
	}{
		{auth.AdminUser, "KurrentDB Administrator", auth.RoleAdmins, b.AdminPassword},
		{auth.OpsUser, "KurrentDB Operations", auth.RoleOps, b.OpsPassword},
	}
	var reqs []cairn.AppendRequest
	var created []string
	for _, u := range builtin {
		if slices.Contains(logins, u.login) {
			continue
		}
		if u.password == "" {
			return fmt.Errorf("users: the built-in user %s needs a password", u.login)
		}
		rec := record{LoginName: u.login, FullName: u.fullName, Groups: []string{u.group}}
		if rec.Hash, rec.Salt, err = db.hashPassword(ctx, u.password); err != nil {
			return fmt.Errorf("users: %w", err)
		}
		r, err := creation(rec)
		if err != nil {
			return err
		}
		reqs = append(reqs, r[:2]...)
		created = append(created, u.login)
	}
	if len(created) == 0 {
		return nil
	}
	listed := cairn.AppendRequest{Stream: UsersStream, Expected: cairn.Any}
	for _, login := range created {
		listed.Events = append(listed.Events, cairn.EventData{Type: EventUser, Data: []byte(login), ContentType: cairn.ContentBinary})
	}
	reqs = append(reqs, listed)
	if v, err := db.store.StreamVersion(ctx, metaPrefix+PasswordNotificationsStream); errors.Is(err, cairn.ErrStreamNotFound) || (err == nil && v < 0) {
		reqs = append(reqs, cairn.AppendRequest{Stream: metaPrefix + PasswordNotificationsStream, Expected: cairn.NoStream,
			Events: []cairn.EventData{{Type: eventMetadata, Data: notificationsMeta, ContentType: cairn.ContentJSON}}})
	} else if err != nil {
		return fmt.Errorf("users: %w", err)
	}
	if _, err := db.store.AppendBatch(ctx, reqs...); errors.Is(err, cairn.ErrWrongExpectedVersion) {
		// Another server on the same store created them first.
		if now, rerr := db.everCreated(ctx); rerr == nil && slices.Contains(now, auth.AdminUser) && slices.Contains(now, auth.OpsUser) {
			return nil
		}
		return fmt.Errorf("users: creating the built-in users %v: %w", created, err)
	} else if err != nil {
		return fmt.Errorf("users: creating the built-in users %v: %w", created, err)
	}
	db.log.Info("built-in users created", "users", created)
	return nil
}

// creation returns the appends that create the user rec: its stream's ACL,
// its first record (expecting no stream: a deleted user's stream is
// recreated), its line in $users.
func creation(rec record) ([]cairn.AppendRequest, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	stream := StreamOf(rec.LoginName)
	return []cairn.AppendRequest{
		{Stream: metaPrefix + stream, Expected: cairn.Any,
			Events: []cairn.EventData{{Type: eventMetadata, Data: userStreamACL, ContentType: cairn.ContentJSON}}},
		{Stream: stream, Expected: cairn.NoStream,
			Events: []cairn.EventData{{Type: EventUserCreated, Data: data, ContentType: cairn.ContentJSON}}},
		{Stream: UsersStream, Expected: cairn.Any,
			Events: []cairn.EventData{{Type: EventUser, Data: []byte(rec.LoginName), ContentType: cairn.ContentBinary}}},
	}, nil
}

// NewUser is a user to create.
type NewUser struct {
	Login    string
	FullName string
	Groups   []string
	Password string
}

// Create creates a user, atomically: its stream and its ACL, and its line
// in $users. As in KurrentDB, creating a user that exists with the same
// password succeeds and changes nothing; with another password it is
// ErrExists.
func (db *DB) Create(ctx context.Context, u NewUser) error {
	if err := ValidateLogin(u.Login); err != nil {
		return err
	}
	if err := validGroups(u.Groups); err != nil {
		return err
	}
	if u.Password == "" {
		return &cairn.InvalidArgumentError{Field: "password", Reason: "must not be empty"}
	}
	cur, err := db.read(ctx, u.Login)
	if err == nil {
		same, err := db.verifyPassword(ctx, u.Password, cur.Hash)
		if err != nil {
			return err
		}
		if same {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrExists, u.Login)
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	rec := record{LoginName: u.Login, FullName: u.FullName, Groups: slices.Clone(u.Groups)}
	if rec.Groups == nil {
		rec.Groups = []string{}
	}
	if rec.Hash, rec.Salt, err = db.hashPassword(ctx, u.Password); err != nil {
		return err
	}
	reqs, err := creation(rec)
	if err != nil {
		return err
	}
	_, err = db.store.AppendBatch(ctx, reqs...)
	db.invalidate(u.Login)
	if errors.Is(err, cairn.ErrWrongExpectedVersion) {
		return fmt.Errorf("%w: %q", ErrExists, u.Login)
	}
	return err
}

// Update sets a user's full name and groups.
func (db *DB) Update(ctx context.Context, login, fullName string, groups []string) error {
	if err := validGroups(groups); err != nil {
		return err
	}
	return db.modify(ctx, login, true, func(r *record) error {
		r.FullName = fullName
		r.Groups = slices.Clone(groups)
		if r.Groups == nil {
			r.Groups = []string{}
		}
		return nil
	})
}

// Enable lets a disabled user authenticate again.
func (db *DB) Enable(ctx context.Context, login string) error {
	return db.modify(ctx, login, false, func(r *record) error { r.Disabled = false; return nil })
}

// Disable refuses a user's credentials from now on, on this server at
// once.
func (db *DB) Disable(ctx context.Context, login string) error {
	return db.modify(ctx, login, true, func(r *record) error { r.Disabled = true; return nil })
}

// ResetPassword sets a user's password, whatever it was.
func (db *DB) ResetPassword(ctx context.Context, login, password string) error {
	if password == "" {
		return &cairn.InvalidArgumentError{Field: "new_password", Reason: "must not be empty"}
	}
	if err := ValidateLogin(login); err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	hash, salt, err := db.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return db.modify(ctx, login, true, func(r *record) error { r.Hash, r.Salt = hash, salt; return nil })
}

// ChangePassword sets a user's password given its current one; a wrong
// current password is ErrBadCredentials.
func (db *DB) ChangePassword(ctx context.Context, login, current, password string) error {
	if password == "" {
		return &cairn.InvalidArgumentError{Field: "new_password", Reason: "must not be empty"}
	}
	if err := ValidateLogin(login); err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	hash, salt, err := db.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return db.modify(ctx, login, true, func(r *record) error {
		ok, err := db.verifyPassword(ctx, current, r.Hash)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("change the password of %q: the current password is wrong: %w", login, ErrBadCredentials)
		}
		r.Hash, r.Salt = hash, salt
		return nil
	})
}

// modify applies change to the stored user and writes the result with the
// version it read, retrying when another change got there first. notify
// writes a password notification in the same commit, for the other
// servers' caches, and makes the write a change of the user's credentials
// (CredentialChanges). The user's cached credentials are dropped after
// the write, whatever its outcome.
func (db *DB) modify(ctx context.Context, login string, notify bool, change func(*record) error) error {
	if err := ValidateLogin(login); err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	for attempt := 1; ; attempt++ {
		cur, err := db.read(ctx, login)
		if err != nil {
			return err
		}
		rec := cur.record
		if err := change(&rec); err != nil {
			return err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		reqs := []cairn.AppendRequest{{Stream: StreamOf(login), Expected: cairn.Exact(cur.version),
			Events: []cairn.EventData{{Type: EventUserUpdated, Data: data, ContentType: cairn.ContentJSON}}}}
		if notify {
			n, err := notification(login)
			if err != nil {
				return err
			}
			reqs = append(reqs, n)
		}
		_, err = db.store.AppendBatch(ctx, reqs...)
		if notify {
			db.changed(login)
		} else {
			db.invalidate(login)
		}
		if errors.Is(err, cairn.ErrWrongExpectedVersion) && attempt < maxRetries {
			continue
		}
		return err
	}
}

// Delete deletes a user: its stream is deleted (a soft delete, so the name
// may be created again), and its credentials are refused from now on.
func (db *DB) Delete(ctx context.Context, login string) error {
	if err := ValidateLogin(login); err != nil {
		return fmt.Errorf("%w: %q", ErrNotFound, login)
	}
	for attempt := 1; ; attempt++ {
		cur, err := db.read(ctx, login)
		if err != nil {
			return err
		}
		err = db.store.DeleteStream(ctx, StreamOf(login), cairn.Exact(cur.version))
		db.changed(login)
		if errors.Is(err, cairn.ErrWrongExpectedVersion) && attempt < maxRetries {
			continue
		}
		if err != nil {
			return err
		}
		n, err := notification(login)
		if err != nil {
			return err
		}
		_, err = db.store.Append(ctx, n.Stream, n.Expected, n.Events...)
		return err
	}
}

// notification is the append that tells other servers that login's
// credentials changed.
func notification(login string) (cairn.AppendRequest, error) {
	data, err := json.Marshal(passwordChanged{LoginName: login})
	if err != nil {
		return cairn.AppendRequest{}, err
	}
	return cairn.AppendRequest{Stream: PasswordNotificationsStream, Expected: cairn.Any,
		Events: []cairn.EventData{{Type: EventPasswordChanged, Data: data, ContentType: cairn.ContentJSON}}}, nil
}

// passwordChanged is the data of an EventPasswordChanged.
type passwordChanged struct {
	LoginName string `json:"loginName"`
}
